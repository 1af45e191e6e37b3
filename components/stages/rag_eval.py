"""Stage: RAG QA evaluation: does the distilled retriever make the generator answer better?

For the test questions with answer strings, each retriever of the run (BM25, base, ranker
re-ranked, distilled) retrieves its top k; the generator answers from those passages (the prompt
and client of the Serve endpoint); answers are scored by exact match and token F1 after SQuAD
normalization, best over gold answers. A closed-book row (no passages) and an oracle row (the
gold passage only) bound the table. Calls fan out over Ray Data with the labelling stage's retry
rules, and every reply is stored as it arrives (``RUN/rag/calls/``): a rerun pays for no call
twice, and identical prompts (two retrievers returning the same passages) are paid once. Adds a
RAG section to ``RUN/report/`` (``report.json``, ``report.md``, ``rag.png``).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from components import call_cache, console, qa_metrics, report, storage, tracking
from components.corpus import TEST_SAMPLE_SEED, Qrels
from components.errors import DataError
from components.llm.answers import parse_answer
from components.llm.chat import chat_backend
from components.llm.generator import generation_messages
from components.retrieval import search_all
from components.run_layout import rag_uri
from components.run import Run
from components.stages.evaluation import evaluate, make_retrievers


def contexts(
    run: Run, qrels: Qrels, question_ids: list[str], texts: list[str]
) -> tuple[dict[str, list[list[str]]], dict[str, str]]:
    """Per system (``base-minilm k=5``, ``closed-book``, ``oracle``...): the passage ids given with each
    question; and a note for each retriever skipped."""
    cfg = run.cfg
    systems: dict[str, list[list[str]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        retrievers, skipped = make_retrievers(run, scratch, cfg.rag.retrievers)
        for r in retrievers:
            hits = search_all(r, texts, max(cfg.rag.ks), cfg.eval.batch_size)
            for k in cfg.rag.ks:
                systems[f"{r.name} k={k}"] = [ids[:k] for ids in hits.ids]
    if cfg.rag.closed_book:
        systems["closed-book"] = [[] for _ in question_ids]
    if cfg.rag.oracle:
        gold = [sorted(qrels.get(q, {}).items(), key=lambda kv: -kv[1]) for q in question_ids]
        systems["oracle"] = [[g[0][0]] if g else [] for g in gold]
    return systems, skipped


def rag_eval(run: Run) -> str:
    """Answer and score every system; return the path of the updated ``report.json``."""
    cfg, collection = run.cfg, run.collection
    split = collection.split(cfg.data.test_split, cfg.data.on_invalid)
    if split.questions.answers is None:
        raise DataError(f"{collection.path}: the questions have no 'answers' field, so answers cannot be scored")
    answered = split.questions.subset(q for q, a in zip(split.questions.ids, split.questions.answers) if a)
    questions = answered.sample(cfg.rag.max_questions, TEST_SAMPLE_SEED)
    if not len(questions):
        raise DataError(f"{collection.path}: no test question of split {cfg.data.test_split!r} has an answer string")
    qids, texts, golds = questions.ids, questions.texts, [list(a) for a in questions.answers]
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    systems, skipped = contexts(run, split.qrels, qids, texts)

    calls = {
        (name, i): call_cache.Call(qid, generation_messages(cfg.generator, q, [passages[d] for d in ids[i]]), cfg.generator.max_tokens)
        for name, ids in systems.items()
        for i, (qid, q) in enumerate(zip(qids, texts))
    }
    generator = chat_backend(cfg.generator)
    model = generator.model_id()
    store = call_cache.open_store(storage.join(rag_uri(cfg), "calls"))
    cache = call_cache.cached_replies(store)
    started = time.monotonic()
    with generator.sender(cfg.ray) as send:
        sent = call_cache.complete(list(calls.values()), model, store, cache, send, desc="rag answers")
    store.compact()
    console.say(f"rag: {len(calls)} prompts, {sent.sent + sent.cached} distinct: {sent.sent} sent, {sent.cached} cached, "
          f"{len(sent.failed)} failed, {time.monotonic() - started:.1f} s (generator: {model})")

    rows: dict[str, dict[str, Any]] = {}
    for name, ids in systems.items():
        em = f1 = 0.0
        failed = 0
        for i, qid in enumerate(qids):
            call = calls[(name, i)]
            reply = cache.get((qid, call.prompt_hash, model))
            if reply is None:
                failed += 1  # scored as wrong: a failed call is not a skipped question
                continue
            e, f = qa_metrics.best_over_gold(parse_answer(reply["text"], ids[i]).answer, golds[i])
            em, f1 = em + e, f1 + f
        rows[name] = {"em": em / len(qids), "f1": f1 / len(qids), "failed": failed}
    rag = {"generator": model, "questions": len(qids), "ks": cfg.rag.ks, "rows": rows, "skipped": skipped}
    return write_report(run, rag)


def write_report(run: Run, rag: dict[str, Any]) -> str:
    """Add the RAG section to the run's report (evaluating the retrievers first if it has none)."""
    cfg = run.cfg
    path = storage.join(cfg.run_dir, "report", "report.json")
    if not storage.exists(path):
        evaluate(run)
    rep = storage.read_json(path)
    rep["rag"] = rag
    path = report.write(storage.join(cfg.run_dir, "report"), rep)
    tracking.log_report(cfg, rep, storage.join(cfg.run_dir, "report"))
    console.say(report.rag_markdown(rag))
    console.say(f"report: {path}")
    return path

