"""Where each stage's artifacts live under a run directory (a local path or an ``s3://`` prefix).

One place for the layout, so jobs, the Serve application and the evaluation agree on it.
"""

from __future__ import annotations

from components import storage
from components.config import Config

MODEL_DIR = "model"  # inside a training stage's directory: the trained model, loadable elsewhere


def base_index_uri(cfg: Config) -> str:
    return storage.join(cfg.run_dir, "index", "base")


def candidates_uri(cfg: Config) -> str:
    return storage.join(cfg.run_dir, "candidates")


def labels_uri(cfg: Config) -> str:
    return storage.join(cfg.run_dir, "labels")


def ranker_uri(cfg: Config) -> str:
    return storage.join(cfg.run_dir, "ranker")


def retriever_uri(cfg: Config) -> str:
    return storage.join(cfg.run_dir, "retriever")


def questions_uri(cfg: Config) -> str:
    """Generated training questions (corpus-only mode)."""
    return storage.join(cfg.run_dir, "questions")


def ablation_uri(cfg: Config, ablation: str) -> str:
    """A query encoder trained without the ranker (``train.ablations``)."""
    return storage.join(cfg.run_dir, f"retriever-{ablation}")


def rag_uri(cfg: Config) -> str:
    """The RAG evaluation's generator calls."""
    return storage.join(cfg.run_dir, "rag")
