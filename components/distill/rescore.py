"""The ranker's scores of candidate lists: Stage 2's teacher signal.

Scoring runs on a Ray Data actor pool (``ranker.score_with_ray``) and is cached in a parquet file
whose metadata names its inputs (the ranker's own inputs, the questions and the lists), so a rerun
or a resumed refresh round scores nothing twice.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyarrow as pa

from components import storage
from components.config import Config
from components.ranker import score_with_ray, with_prior
from components.run import init_ray
from components.run_layout import ranker_uri, retriever_uri
from components.training import use_gpu


def ranker_scores(
    cfg: Config, ranker_model: str, passages: dict[str, str], questions: list[str], candidates: list[list[str]],
    priors: Sequence[Sequence[float]], cache: Optional[str] = None,
) -> list[np.ndarray]:
    """Ranker scores of every candidate, cached in ``cache`` (default
    ``RUN/retriever/ranker_scores.parquet``) and reused while the inputs are the same. ``priors``
    are the candidates' first-stage cosines, which a residual ranker adds to its logits."""
    cache = cache or storage.join(retriever_uri(cfg), "ranker_scores.parquet")
    ranker_manifest = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
    temperature = ranker_manifest["inputs"]["train"].get("prior_temperature")
    priors = [[float(x) for x in p] for p in priors]
    inputs = storage.content_hash([ranker_manifest["inputs"], questions, candidates] + ([priors] if temperature else []))
    if storage.exists(cache):
        table = storage.read_parquet(cache)
        if table.schema.metadata and table.schema.metadata.get(b"inputs") == inputs.encode():
            return [np.asarray(s, dtype=np.float32) for s in table.column("scores").to_pylist()]
    init_ray(cfg.ray)
    rc = cfg.train.ranker
    flat = score_with_ray(
        [q for q, c in zip(questions, candidates) for _ in c], [passages[d] for c in candidates for d in c],
        ranker_model, rc.max_seq_length, rc.score_batch_size, cfg.ray.embed_actors, use_gpu(cfg),
    )
    out, at = [], 0
    for c, prior in zip(candidates, priors):
        out.append(with_prior(flat[at : at + len(c)], prior, temperature))
        at += len(c)
    table = pa.table({"scores": [s.tolist() for s in out]}).replace_schema_metadata({"inputs": inputs})
    storage.write_parquet(cache, table)
    return out
