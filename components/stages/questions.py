"""Stage: the teacher LLM writes the training questions from the corpus (corpus-only mode).

Samples passages (seeded, stratified by document), asks the teacher (the labelling pool: an
OpenAI-compatible endpoint, vLLM, or the local llama.cpp server) for ``generate.per_passage``
questions each, parses and filters them (length, duplicates, copied spans), and, with
``generate.consistency_k``, keeps a question only when the base retriever finds its source passage
in the top k. Every reply is stored as it arrives (``RUN/questions/calls/``), so a rerun pays no
call twice. Writes ``RUN/questions/generated.parquet`` (id, question, source passage id) and
``summary.json`` with the count dropped at each filter. Used when ``data.questions: generated``.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from components import call_cache, console, question_gen, run_models, storage
from components.corpus import Questions
from components.errors import DataError
from components.llm.chat import chat_backend
from components.retrieval import search_all
from components.run_layout import questions_uri
from components.run import Run, stage
from components.stages.index import build_index


def _consistent(run: Run, rows: list[dict[str, Any]]) -> list[bool]:
    """Is each question's source passage in the base retriever's top ``consistency_k``?"""
    cfg = run.cfg
    build_index(run)
    hits = search_all(run_models.load_base(cfg, run.collection.corpus), [r["question"] for r in rows], cfg.generate.consistency_k or 1, cfg.eval.batch_size)
    return [r["source_id"] in ids for r, ids in zip(rows, hits.ids)]


@stage
def generate_questions(run: Run) -> str:
    """Write (or reuse) the generated training questions; return the URI of ``generated.parquet``."""
    cfg, collection = run.cfg, run.collection
    g = cfg.generate
    corpus = collection.corpus
    teacher = chat_backend(cfg.labels)
    model = teacher.model_id()
    out = questions_uri(cfg)
    table_uri = storage.join(out, "generated.parquet")
    inputs = {"corpus": corpus.content_hash(), "generate": g.model_dump(), "teacher": model, "seed": cfg.seed,
              "encoder": cfg.encoder.model if g.consistency_k else None}
    if storage.stage_is_current(out, inputs):
        console.say(f"questions: up to date at {table_uri}, skipping")
        return table_uri
    wanted = math.ceil(g.count * g.oversample / g.per_passage)
    sampled = question_gen.sample_passages(corpus.ids, corpus.titles, wanted, cfg.seed)
    text_of = dict(zip(corpus.ids, corpus.passages()))
    texts = [text_of[p] for p in sampled]
    calls = question_gen.generation_calls(sampled, texts, g)
    store = call_cache.open_store(storage.join(out, "calls"))
    cache = call_cache.cached_replies(store)
    with teacher.sender(cfg.ray) as send:
        sent = call_cache.complete(calls, model, store, cache, send, desc="questions")
    store.compact()
    replies = [(cache.get((c.question_id, c.prompt_hash, model)) or {}).get("text") for c in calls]
    rows, dropped = question_gen.collect(sampled, texts, replies, g)
    if g.consistency_k and rows:
        ok = _consistent(run, rows)
        dropped["source_not_in_top_k"] = sum(not k for k in ok)
        rows = [r for r, k in zip(rows, ok) if k]
    kept = rows[: g.count]
    if not kept:
        raise DataError(f"the teacher's replies for {len(sampled)} passages left no question after filtering ({dict(dropped)})")
    storage.write_parquet(table_uri, pa.Table.from_pylist(kept))
    summary = {"teacher": model, "passages_sampled": len(sampled), "calls_sent": sent.sent, "calls_cached": sent.cached,
               "failed_calls": len(sent.failed), "asked": len(sampled) * g.per_passage,
               "dropped": dict(dropped), "passed_filters": len(rows), "kept": len(kept)}
    storage.write_json(storage.join(out, "summary.json"), summary)
    storage.mark_stage_done(out, inputs, kept=len(kept))
    console.say(f"questions: {len(kept)} kept of {len(sampled)} passages x {g.per_passage} asked; dropped {dict(dropped)}; "
          f"{sent.sent} calls sent ({sent.cached} cached) → {table_uri} (teacher: {model})")
    return table_uri


def generated_questions(run: Run) -> Questions:
    table = storage.read_parquet(generate_questions(run)).to_pydict()
    return Questions(ids=table["question_id"], texts=table["question"], answers=None)

