"""The ranker's scores of candidate lists: Stage 2's teacher signal.

Scoring runs on a Ray Data actor pool (``ranker.score_with_ray``) and is cached in a parquet file
of (list key, scores) whose metadata names the ranker's inputs and the precision it scored at. A
list's key hashes its question and candidates, so a rerun or a resumed refresh round scores nothing
twice, and a pool that grows (more extra questions, questions written from the corpus) pays only for
its new lists. bf16 scores differ from fp32's in the third digit, so a cache is reused only at the
precision that wrote it: an fp32 rerun meant to compare against a bf16 one learns from fp32 scores.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyarrow as pa

from components import storage
from components.config import Config
from components.precision import Precision
from components.ranker import score_with_ray, with_prior
from components.run import init_ray
from components.run_layout import ranker_uri, retriever_uri
from components.training import use_gpu


def list_key(question: str, candidates: Sequence[str], prior: Optional[Sequence[float]]) -> str:
    """What one list's scores depend on besides the ranker (its first-stage cosines only for a
    residual ranker, which adds them to its logits)."""
    return storage.content_hash([question, list(candidates)] + ([list(prior)] if prior is not None else []))


def _ranker(cfg: Config) -> tuple[bytes, Optional[float]]:
    """The current ranker's digest (a cache is valid only for it) and its prior temperature (set
    only for a residual ranker)."""
    manifest = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
    return storage.content_hash(manifest["inputs"]).encode(), manifest["inputs"]["train"].get("prior_temperature")


def _stored(cache: str, ranker: bytes, precision: Precision) -> dict[str, list[float]]:
    """The cached scores by list key, if ``cache`` holds ``ranker``'s at ``precision`` (a cache
    that names no precision predates bf16 and was scored at fp32)."""
    if storage.exists(cache):
        table = storage.read_parquet(cache)
        meta = table.schema.metadata or {}
        if meta.get(b"ranker") == ranker and meta.get(b"precision", b"fp32") == precision.encode() and "key" in table.column_names:
            return dict(zip(table.column("key").to_pylist(), table.column("scores").to_pylist()))
    return {}


def _keys(questions: list[str], candidates: list[list[str]], priors: list[list[float]], temperature: Optional[float]) -> list[str]:
    return [list_key(q, c, p if temperature else None) for q, c, p in zip(questions, candidates, priors)]


def stored_scores(cfg: Config, questions: list[str], candidates: list[list[str]], priors: Sequence[Sequence[float]],
                  cache: Optional[str] = None) -> list[Optional[np.ndarray]]:
    """Each list's scores as the current ranker's cache holds them (None where it holds none),
    without scoring anything: for diagnostics that read a finished run."""
    ranker, temperature = _ranker(cfg)
    known = _stored(cache or storage.join(retriever_uri(cfg), "ranker_scores.parquet"), ranker, cfg.train.precision)
    keys = _keys(questions, candidates, [[float(x) for x in p] for p in priors], temperature)
    return [np.asarray(known[k], dtype=np.float32) if k in known else None for k in keys]


def ranker_scores(
    cfg: Config, ranker_model: str, passages: dict[str, str], questions: list[str], candidates: list[list[str]],
    priors: Sequence[Sequence[float]], cache: Optional[str] = None,
) -> list[np.ndarray]:
    """Ranker scores of every candidate, cached per list in ``cache`` (default
    ``RUN/retriever/ranker_scores.parquet``) while the ranker and the precision are the same. ``priors`` are the
    candidates' first-stage cosines, which a residual ranker adds to its logits."""
    cache = cache or storage.join(retriever_uri(cfg), "ranker_scores.parquet")
    ranker, temperature = _ranker(cfg)
    priors = [[float(x) for x in p] for p in priors]
    keys = _keys(questions, candidates, priors, temperature)
    known = _stored(cache, ranker, cfg.train.precision)
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        init_ray(cfg.ray)
        rc = cfg.train.ranker
        flat = score_with_ray(
            [questions[i] for i in todo for _ in candidates[i]], [passages[d] for i in todo for d in candidates[i]],
            ranker_model, rc.max_seq_length, rc.score_batch_size, cfg.ray.embed_actors, use_gpu(cfg), cfg.train.precision,
        )
        at = 0
        for i in todo:
            n = len(candidates[i])
            known[keys[i]] = np.asarray(with_prior(flat[at : at + n], priors[i], temperature), np.float32).tolist()
            at += n
        table = pa.table({"key": list(known), "scores": list(known.values())}).replace_schema_metadata(
            {"ranker": ranker, "precision": cfg.train.precision})
        storage.write_parquet(cache, table)
    return [np.asarray(known[k], dtype=np.float32) for k in keys]
