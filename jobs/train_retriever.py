"""Stage 2: train the retriever's query encoder to match the ranker's distribution (KL, Ray Train).

For every training question, the ranker scores the base retriever's candidates (a Ray Data actor
pool); the query encoder then learns KL(softmax(ranker / tau_ranker) ‖ softmax(cos / tau_retriever))
against the frozen passage vectors of the base index, so the index needs no rebuild: the distilled
retriever is the new query encoder over ``RUN/index/base``. Writes ``RUN/retriever/model``
(sentence-transformers format), ``losses.jsonl`` and a manifest naming the passage encoder.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa

from components import storage
from components.config import Config
from components.corpus import Collection, load_collection
from components.index import FaissIndex
from components.ranker import score_with_ray
from components.training import MODEL_DIR, retriever_loop
from components.run_layout import base_index_uri, ranker_uri, retriever_uri
from jobs.candidates import build_candidates
from jobs.common import init_ray, job_main, stage
from jobs.train_ranker import train_ranker, train_stage, use_gpu


def ranker_scores(cfg: Config, ranker_model: str, questions: list[str], candidates: list[list[str]], passages: dict[str, str]) -> list[np.ndarray]:
    """Ranker scores of every candidate, cached in ``RUN/retriever/ranker_scores.parquet``."""
    cache = storage.join(retriever_uri(cfg), "ranker_scores.parquet")
    ranker_manifest = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
    inputs = storage.content_hash([ranker_manifest["inputs"], questions, candidates])
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
    for c in candidates:
        out.append(flat[at : at + len(c)])
        at += len(c)
    table = pa.table({"scores": [s.tolist() for s in out]}).replace_schema_metadata({"inputs": inputs})
    storage.write_parquet(cache, table)
    return out


@stage
def train_retriever(cfg: Config, collection: Optional[Collection] = None) -> str:
    """Train the ranker if needed, then the query encoder; return the URI of the saved model."""
    collection = collection if collection is not None else load_collection(cfg.data.path, cfg.data.on_invalid)
    ranker_model = train_ranker(cfg, collection)
    cands = storage.read_parquet(build_candidates(cfg, collection)).to_pydict()
    index = FaissIndex.load(base_index_uri(cfg), corpus_hash=collection.corpus.content_hash())
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    scores = ranker_scores(cfg, ranker_model, cands["question"], cands["candidate_ids"], passages)
    width = max(len(c) for c in cands["candidate_ids"])
    rows: list[dict[str, Any]] = []
    for question, ids, s in zip(cands["question"], cands["candidate_ids"], scores):
        vecs = np.zeros((width, index.manifest["dim"]), np.float32)
        vecs[: len(ids)] = index.vectors(ids)
        pad = width - len(ids)
        rows.append({
            "question": question,
            "passage_emb": vecs,
            "ranker_scores": np.pad(s, (0, pad)).astype(np.float32),
            "mask": np.arange(width) < len(ids),
        })
    tc = cfg.train.retriever
    inputs = {"ranker": storage.content_hash([s.tolist() for s in scores]), "index": index.manifest["files"],
              "encoder": cfg.encoder.model, "train": tc.model_dump(), "workers": cfg.train.num_workers, "seed": cfg.seed}
    out = retriever_uri(cfg)
    if storage.stage_is_current(out, inputs):
        print(f"retriever: up to date at {out}, skipping")
        return storage.join(out, MODEL_DIR)
    model = train_stage(
        cfg, "retriever", retriever_loop, rows, {**tc.model_dump(), "model": cfg.encoder.model}, inputs,
        document_encoder=index.manifest["encoder"], questions=len(rows),
    )
    print(f"retriever: query encoder distilled on {len(rows)} questions → {model}")
    return model


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    return job_main(__doc__, train_retriever, argv, llm_options=True, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
