"""Stage: evaluate retrievers on the held-out questions and write the report.

Compares the configured retrievers (BM25, the base dense retriever) on the test split: top-k answer
accuracy (DPR matching; success@k where the collection has no answer strings) and, from the qrels,
recall@k, MRR@10 and nDCG@10 by ir-measures. Writes ``RUN/report/report.{json,md}`` and ``topk.png``.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any, Optional, Sequence

from components import console, metrics, report, run_models, storage, tracking
from components.bm25 import BM25Retriever
from components.config import Config
from components.corpus import TEST_SAMPLE_SEED, Qrels, Questions
from components.errors import DataError
from components.retrieval import Retriever, search_all
from components.run_layout import ablation_uri, labels_uri, questions_uri, ranker_uri, retriever_uri
from components.training import LOSSES_FILE
from components.versions import versions
from components.run import Run
from components.stages import lineage


def make_retrievers(run: Run, scratch: str, kinds: Optional[Sequence[str]] = None) -> tuple[list[Retriever], dict[str, str]]:
    """The retrievers of ``kinds`` (default ``eval.retrievers``) whose models are this run's
    current ones (``lineage``), and for each one left out the reason."""
    cfg, collection = run.cfg, run.collection
    kinds = cfg.eval.retrievers if kinds is None else kinds
    out: list[Retriever] = []
    skipped: dict[str, str] = {}
    base = run_models.load_base(cfg, collection.corpus) if {"base", "ranker", "distilled"} & set(kinds) else None
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    for kind in kinds:
        if kind == "bm25":
            out.append(BM25Retriever(collection.corpus.ids, collection.corpus.passages(), cfg.bm25))
        elif kind == "base":
            out.append(base)
        elif kind == "ranker":
            problem = lineage.ranker_problem(run)
            if problem:
                skipped[kind] = problem
                continue
            out.append(run_models.load_rerank(cfg, base, passages.__getitem__, cfg.labels.num_candidates, scratch))
    encoders_wanted = query_encoders(cfg) if "distilled" in kinds else query_encoders(cfg)[1:]
    for name, uri, stage_name in encoders_wanted:
        problem = lineage.query_encoder_problem(run, stage_name) if stage_name else (
            None if storage.stage_is_done(uri) else f"not trained: no model at {uri}")
        if problem:
            skipped[name] = problem
            continue
        base = base or run_models.load_base(cfg, collection.corpus)
        out.append(run_models.load_distilled(cfg, base, scratch, name=name, uri=uri))
    return out, skipped


# Each ablation's row in the report.
ABLATION_NAMES = {"direct": "direct (no ranker)", "supervised": "supervised (gold qrels)"}


def query_encoders(cfg: Config) -> list[tuple[str, str, Optional[str]]]:
    """Report name, stage URI and (for this run's own) stage name of each trained query encoder
    over the base index: this run's distilled one, its ablations, then other runs' distilled ones."""
    out: list[tuple[str, str, Optional[str]]] = [("distilled", retriever_uri(cfg), "retriever")]
    out += [(ABLATION_NAMES[a], ablation_uri(cfg, a), f"retriever-{a}") for a in cfg.train.ablations]
    out += [(f"distilled ({name})", retriever_uri(cfg.model_copy(update={"run_dir": run_dir})), None)
            for name, run_dir in cfg.eval.other_runs.items()]
    return out


def training_summary(cfg: Config) -> dict[str, Any]:
    """Per trained query encoder: its training questions (how many of them the LLM labelled) and
    the dev-chosen weight average."""
    out = {}
    for name, uri, _ in query_encoders(cfg):
        if storage.stage_is_done(uri):
            manifest = storage.read_json(storage.join(uri, "manifest.json"))
            out[name] = {k: manifest.get(k) for k in ("questions", "llm_labelled", "dev", "teacher_on_dev")}
    return out


def evaluate_retriever(
    retriever: Retriever, passages: dict[str, str], questions: Questions, qrels: Qrels, cfg: Config
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Top-k accuracy and rank metrics of one retriever on one question set, and the per-question
    values (``top-k`` hits, ``ndcg@10`` over the judged questions) that paired comparisons need."""
    hits = search_all(retriever, questions.texts, max(cfg.eval.ks), cfg.eval.batch_size)
    matrix = metrics.hit_matrix(hits, questions.ids, questions.answers, qrels, passages.__getitem__)
    result: dict[str, Any] = {"top_k_accuracy": metrics.top_k_accuracy(matrix, cfg.eval.ks)}
    result.update(metrics.rank_metrics(hits, questions.ids, qrels, cfg.eval.ks))
    per_question = {f"top-{k}": [float(any(row[:k])) for row in matrix] for k in cfg.eval.ks}
    ndcg = metrics.per_question_ndcg(hits, questions.ids, qrels)
    per_question["ndcg@10"] = [ndcg[q] for q in sorted(ndcg)]
    return result, per_question


def compare_to(base: dict[str, list[float]], other: dict[str, list[float]], seed: int = 0) -> dict[str, dict[str, float]]:
    """Per metric: the mean per-question difference ``other − base`` and its paired bootstrap 95% CI."""
    return {m: metrics.paired_bootstrap([o - b for o, b in zip(other[m], base[m])], seed=seed) for m in base}


def teacher_summary(cfg: Config, with_ranker: bool = True) -> Optional[dict[str, Any]]:
    """Who labelled the training questions, and how many labels the (current) ranker used."""
    summary_uri = storage.join(labels_uri(cfg), "summary.json")
    if not storage.exists(summary_uri):
        return None
    s = storage.read_json(summary_uri)
    out = {k: s[k] for k in ("teacher", "backend", "questions", "complete", "repaired", "unusable", "failed", "calls_sent")
           if k in s}
    out.update({k: s[k] for k in ("passes", "mean_agreement") if s.get("passes", 1) > 1})
    if with_ranker and storage.stage_is_done(ranker_uri(cfg)):
        ranker = storage.read_json(storage.join(ranker_uri(cfg), "manifest.json"))
        out.update({k: ranker[k] for k in ("labels_used", "labels_held_out") if k in ranker})
    out["training_questions"] = cfg.data.questions
    generated = storage.join(questions_uri(cfg), "summary.json")
    if (cfg.data.questions == "generated" or cfg.train.retriever.corpus_questions) and storage.exists(generated):
        out["generation"] = storage.read_json(generated)
    return out


def score_retrievers(run: Run) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, str]]:
    """Evaluate every retriever the run's config names on its test split: what was scored (the
    report's ``dataset`` and ``accuracy_definition``), each retriever's metrics with its paired
    difference from the base (``vs_base``), and why each absent one is absent."""
    cfg, collection = run.cfg, run.collection
    split = collection.split(cfg.data.test_split, cfg.data.on_invalid)
    questions = split.questions.sample(cfg.data.max_test_questions, TEST_SAMPLE_SEED)
    if len(questions) == 0:
        raise DataError(f"{collection.path}: split {cfg.data.test_split!r} has no judged questions")
    passages = dict(zip(collection.corpus.ids, collection.corpus.passages()))
    with tempfile.TemporaryDirectory() as scratch:
        retrievers, skipped = make_retrievers(run, scratch)
        evaluated = {r.name: evaluate_retriever(r, passages, questions, split.qrels, cfg) for r in retrievers}
    results = {name: result for name, (result, _) in evaluated.items()}
    base_name = run_models.dense_name(cfg.encoder.model)
    if base_name in evaluated:
        for name, (result, per_question) in evaluated.items():
            if name != base_name:
                result["vs_base"] = compare_to(evaluated[base_name][1], per_question)
    # every paired metric evaluate_retriever keeps, question by question, so runs can be compared and
    # pooled after the fact (scripts/pool_seeds.py --metric top-1), not only against this run's own base
    per_question: dict[str, dict[str, list[float]]] = {}
    for name, (_, per) in evaluated.items():
        for metric, values in per.items():
            per_question.setdefault(metric, {})[name] = values
    scored = {
        "base": base_name,
        "per_question": per_question,
        "dataset": {
            "name": cfg.data.path if cfg.data.path == "demo" else cfg.data.path.rstrip("/").split("/")[-1],
            "path": collection.path,
            "split": split.name,
            "questions": len(questions),
            "documents": len(collection.corpus),
            "corpus_hash": collection.corpus.content_hash(),
        },
        "accuracy_definition": "DPR answer match in top k" if questions.answers is not None
        else "success@k (a judged-relevant document in top k)",
    }
    return scored, results, skipped


def loss_curves(cfg: Config, skipped: dict[str, str], points: int = 400) -> dict[str, list[list[float]]]:
    """Each evaluated stage's training loss as ``[step, loss]`` pairs (at most ``points``, evenly
    thinned), for the report's chart."""
    out = {}
    for stage_name, uri, row in (("ranker", ranker_uri(cfg), "ranker"), ("retriever", retriever_uri(cfg), "distilled")):
        losses = storage.join(uri, LOSSES_FILE)
        if row in skipped or not storage.exists(losses):
            continue
        curve = [json.loads(line) for line in storage.read_text(losses).splitlines() if line]
        every = max(1, len(curve) // points)
        out[stage_name] = [[x["step"], x["loss"]] for x in curve[::every]]
    return out


def evaluate(run: Run) -> str:
    """Evaluate every configured retriever on the test split; return the path of ``report.json``."""
    cfg = run.cfg
    scored, results, skipped = score_retrievers(run)
    rep = {
        **scored,
        "retrievers": results,
        "skipped": skipped,
        "teacher": teacher_summary(cfg, with_ranker="ranker" not in skipped),
        "query_encoders": {k: v for k, v in training_summary(cfg).items() if k not in skipped},
        "losses": loss_curves(cfg, skipped),
        "validation": run.collection.validation.counts,
        "config": cfg.public_dump(),
        "versions": versions(),
    }
    path = report.write(storage.join(cfg.run_dir, "report"), rep)
    tracking.log_report(cfg, rep, storage.join(cfg.run_dir, "report"))
    print(report.markdown(rep))  # the full tables, in the log
    console.say(report.summary(rep))
    console.say(f"report: {path} (and report.html beside it)")
    return path
