"""Stage: the base retriever's top-n candidates for each training question.

Writes ``RUN/candidates/candidates.parquet`` (question id, question, candidate ids, scores) and a
manifest tying it to the index and question set; skipped when both are unchanged.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import pyarrow as pa

from components import encoders, storage
from components.config import Config
from components.corpus import Collection, Questions, load_collection
from components.errors import DataError
from components.index import FaissIndex
from components.retrieval import DenseRetriever, search_all
from components.run_layout import candidates_uri
from jobs.common import job_main, stage
from jobs.generate_questions import generated_questions
from jobs.index import build_index


def training_questions(cfg: Config, collection: Collection) -> Questions:
    """The train split's questions, or the LLM-written ones (``data.questions: generated``)."""
    if cfg.data.questions == "generated":
        return generated_questions(cfg, collection).sample(cfg.labels.max_questions, cfg.seed)
    questions = collection.split(cfg.data.train_split, cfg.data.on_invalid).questions.sample(cfg.labels.max_questions, cfg.seed)
    if len(questions) == 0:
        raise DataError(f"{collection.path}: split {cfg.data.train_split!r} has no judged questions to label")
    return questions


@stage
def build_candidates(cfg: Config, collection: Optional[Collection] = None) -> str:
    """Retrieve ``labels.num_candidates`` passages per training question; return the parquet URI."""
    collection = collection if collection is not None else load_collection(cfg.data.path, cfg.data.on_invalid)
    questions = training_questions(cfg, collection)
    index_uri = build_index(cfg, collection.corpus)
    index = FaissIndex.load(index_uri, corpus_hash=collection.corpus.content_hash())
    out_dir = candidates_uri(cfg)
    inputs = {
        "index_files": index.manifest["files"],
        "num_candidates": cfg.labels.num_candidates,
        "questions": storage.content_hash([questions.ids, questions.texts]),
    }
    table_uri = storage.join(out_dir, "candidates.parquet")
    if storage.stage_is_current(out_dir, inputs):
        print(f"candidates: up to date at {table_uri}, skipping")
        return table_uri
    retriever = DenseRetriever("base", encoders.load_encoder(cfg.encoder), cfg.encoder, index)
    hits = search_all(retriever, questions.texts, cfg.labels.num_candidates, cfg.eval.batch_size)
    storage.write_parquet(
        table_uri,
        pa.table({"question_id": questions.ids, "question": questions.texts, "candidate_ids": hits.ids, "scores": hits.scores}),
    )
    storage.mark_stage_done(out_dir, inputs)
    print(f"candidates: top-{cfg.labels.num_candidates} for {len(questions)} questions → {table_uri}")
    return table_uri


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    return job_main(__doc__, build_candidates, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
