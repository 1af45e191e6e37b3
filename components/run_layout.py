"""Where each stage's artifacts live under a run directory (a local path or an ``s3://`` prefix).

One place for the layout, so jobs, the Serve application and the evaluation agree on it.
"""

from __future__ import annotations

from typing import Any, Optional

from components import storage
from components.config import Config

MODEL_DIR = "model"  # inside a training stage's directory: the trained model, loadable elsewhere
# (``model-<digest of its inputs>`` since models are published under a new name: put_model, switch_model)
TRAINED_DIR = "trained"  # beside it, where the kept model was derived (a weight average): the training's own end point


def stage_model(stage_dir: str, manifest: Optional[dict[str, Any]] = None) -> str:
    """The model of a finished training stage: the directory its manifest names (``model`` in
    runs from before models were published under their own name). Pass ``manifest`` when the
    caller has read it already."""
    if manifest is None:
        uri = storage.join(stage_dir, "manifest.json")
        manifest = storage.read_json(uri) if storage.exists(uri) else {}
    return storage.join(stage_dir, manifest.get("model", MODEL_DIR))


def trained_model(stage_dir: str) -> str:
    """The model the stage's training ended with: its ``trained`` end point where the kept model
    was derived from it, else the kept model itself."""
    manifest = storage.read_json(storage.join(stage_dir, "manifest.json"))
    return storage.join(stage_dir, manifest.get(TRAINED_DIR, manifest["model"]))


def put_model(local_model: str, stage_dir: str, inputs: dict[str, Any], kind: str = MODEL_DIR) -> str:
    """Copy a trained model to ``stage_dir/<kind>-<digest of inputs>``, a name no manifest points
    to yet (``switch_model`` publishes it); return its URI, which workers on any node can read."""
    uri = storage.join(stage_dir, f"{kind}-{storage.content_hash(inputs)[:12]}")
    storage.put_dir(local_model, uri)
    return uri


def switch_model(stage_dir: str, inputs: dict[str, Any], model_uri: str, files: dict[str, bytes],
                 trained_uri: Optional[str] = None, **details: Any) -> str:
    """Write ``files`` beside the model ``put_model`` placed, switch the stage's manifest to it,
    and only then delete the models it replaced. A kill at any point leaves the manifest naming a
    whole model (the old one until the switch), never a directory half overwritten. Where the
    model was derived from the training's end point, ``trained_uri`` (under ``stage_dir``) names
    that one, kept the same way."""
    def under_stage(uri: str) -> str:
        return uri[len(stage_dir.rstrip("/")):].strip("/")

    name = under_stage(model_uri)
    for file_name, data in files.items():
        storage.write_bytes(storage.join(stage_dir, file_name), data)
    if trained_uri is not None:
        details[TRAINED_DIR] = under_stage(trained_uri)
    storage.mark_stage_done(stage_dir, inputs, model=name, **details)
    named = {name, details.get(TRAINED_DIR)}
    for old in storage.list_dirs(stage_dir):
        base = under_stage(old)
        if base not in named and any(base == kind or base.startswith(kind + "-") for kind in (MODEL_DIR, TRAINED_DIR)):
            storage.delete_dir(old)
    return model_uri


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
