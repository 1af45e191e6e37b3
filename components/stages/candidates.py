"""Stage: the base retriever's top-n candidates for each training question.

Writes ``RUN/candidates/candidates.parquet`` (question id, question, candidate ids, scores) and a
manifest tying it to the index and question set; skipped when both are unchanged. The
``stage2`` pool adds ``train.retriever.extra_questions`` questions the LLM never labels, and with
``train.retriever.corpus_questions`` the questions the teacher wrote from the corpus, which only
the ranker scores (``RUN/candidates/stage2/``): the ranker is cheap and the LLM is not.
"""

from __future__ import annotations

import pyarrow as pa

from components import console, encoders, storage
from components.corpus import Questions
from components.errors import DataError
from components.index import FaissIndex
from components.retrieval import DenseRetriever, search_all
from components.run_layout import candidates_uri
from components.run import Run, stage
from components.stages.index import build_index
from components.stages.questions import generated_questions


def training_questions(run: Run, pool: str = "labelled") -> Questions:
    """The questions the LLM labels: a seeded sample of ``labels.max_questions`` of the train
    split's (or the LLM-written ones, ``data.questions: generated``). The ``stage2`` pool is a
    larger sample by the same seed, so it holds every labelled question, plus
    ``train.retriever.extra_questions`` more (null: all of them), then, with
    ``train.retriever.corpus_questions``, the generated ones."""
    cfg, collection = run.cfg, run.collection
    if cfg.data.questions == "generated":
        everything = generated_questions(run)
    else:
        everything = collection.split(cfg.data.train_split, cfg.data.on_invalid).questions
    wanted, extra = cfg.labels.max_questions, cfg.train.retriever.extra_questions
    if pool == "stage2":
        wanted = None if wanted is None or extra is None else wanted + extra
    questions = everything.sample(wanted, cfg.seed)
    if len(questions) == 0:
        raise DataError(f"{collection.path}: split {cfg.data.train_split!r} has no judged questions to label")
    if pool == "stage2" and cfg.train.retriever.corpus_questions:
        questions = questions + generated_questions(run)
    return questions


@stage
def build_candidates(run: Run, pool: str = "labelled") -> str:
    """Retrieve ``labels.num_candidates`` passages per question of ``pool`` (the labelled training
    questions, or Stage 2's, see ``training_questions``); return the parquet URI."""
    cfg, collection = run.cfg, run.collection
    questions = training_questions(run, pool)
    index_uri = build_index(run)
    index = FaissIndex.load(index_uri, corpus_hash=collection.corpus.content_hash())
    out_dir = candidates_uri(cfg) if pool == "labelled" else storage.join(candidates_uri(cfg), pool)
    inputs = {
        "index_files": index.manifest["files"],
        "num_candidates": cfg.labels.num_candidates,
        "questions": storage.content_hash([questions.ids, questions.texts]),
    }
    table_uri = storage.join(out_dir, "candidates.parquet")
    if storage.stage_is_current(out_dir, inputs):
        console.say(f"candidates: up to date at {table_uri}, skipping")
        return table_uri
    retriever = DenseRetriever("base", encoders.load_encoder(cfg.encoder), cfg.encoder, index)
    hits = search_all(retriever, questions.texts, cfg.labels.num_candidates, cfg.eval.batch_size)
    storage.write_parquet(
        table_uri,
        pa.table({"question_id": questions.ids, "question": questions.texts, "candidate_ids": hits.ids, "scores": hits.scores}),
    )
    storage.mark_stage_done(out_dir, inputs)
    console.say(f"candidates: top-{cfg.labels.num_candidates} for {len(questions)} {pool} questions → {table_uri}")
    return table_uri

