"""Retrieval quality: top-k answer accuracy (DPR) and rank metrics from ``ir-measures``.

Top-k accuracy is the fraction of questions with at least one *hit* in the top k. A hit is a
passage containing a gold answer (DPR matching) when the collection has answer strings, otherwise a
judged-relevant document (success@k). Recall@k, MRR@10 and nDCG@10 are computed by ir-measures
(pytrec_eval underneath), never by hand, so they match what other IR tools report.

A difference between two retrievers is reported with a paired bootstrap confidence interval over
the questions both answered (the same questions, so per-question differences are resampled).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

import ir_measures
from ir_measures import nDCG, R, RR

from components.answer_match import has_answer
from components.corpus import Qrels
from components.retrieval import Hits


def hit_matrix(
    hits: Hits,
    question_ids: Sequence[str],
    answers: Optional[Sequence[Sequence[str]]],
    qrels: Qrels,
    passage_of: Callable[[str], str],
) -> list[list[bool]]:
    """Per question, per rank: is this a hit? Answer matching when ``answers`` is given, else qrels."""
    matrix = []
    for i, (qid, ranked) in enumerate(zip(question_ids, hits.ids)):
        if answers is not None:
            matrix.append([has_answer(passage_of(d), answers[i]) for d in ranked])
        else:
            relevant = {d for d, rel in qrels.get(qid, {}).items() if rel > 0}
            matrix.append([d in relevant for d in ranked])
    return matrix


def top_k_accuracy(matrix: Sequence[Sequence[bool]], ks: Sequence[int]) -> dict[str, float]:
    """Fraction of questions with a hit within the first k results, for each k."""
    if not matrix:
        raise ValueError("no questions to evaluate")
    return {str(k): sum(any(row[:k]) for row in matrix) / len(matrix) for k in ks}


def _run(hits: Hits, question_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    # Scores can tie (BM25 zeros) and ir-measures breaks ties by doc id: score by rank instead,
    # so the metrics see exactly the order the retriever returned.
    return {qid: {d: float(len(ids) - r) for r, d in enumerate(ids)} for qid, ids in zip(question_ids, hits.ids)}


def per_question_ndcg(hits: Hits, question_ids: Sequence[str], qrels: Qrels, k: int = 10) -> dict[str, float]:
    """nDCG@k of each judged question, by ir-measures (0 for a judged question retrieving nothing judged)."""
    run = _run(hits, question_ids)
    judged = {q: docs for q, docs in qrels.items() if q in run}
    out = {q: 0.0 for q in judged}
    out.update({m.query_id: float(m.value) for m in ir_measures.iter_calc([nDCG @ k], judged, run)})
    return out


def paired_bootstrap(differences: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean of per-question differences and its percentile bootstrap interval (questions resampled
    with replacement, ``resamples`` times, seeded)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        raise ValueError("no paired questions to compare")
    means = d[np.random.default_rng(seed).integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return {"delta": float(d.mean()), "ci_low": float(np.percentile(means, tail)), "ci_high": float(np.percentile(means, 100 - tail))}


def rank_metrics(hits: Hits, question_ids: Sequence[str], qrels: Qrels, ks: Sequence[int]) -> dict[str, float]:
    """Recall@k for each k, MRR@10 and nDCG@10 over the judged questions, by ir-measures."""
    run = _run(hits, question_ids)
    judged = {q: docs for q, docs in qrels.items() if q in run}
    measures = [RR @ 10, nDCG @ 10] + [R @ k for k in ks]
    values = ir_measures.calc_aggregate(measures, judged, run)
    out = {"mrr@10": values[RR @ 10], "ndcg@10": values[nDCG @ 10]}
    out.update({f"recall@{k}": values[R @ k] for k in ks})
    return {name: float(v) for name, v in out.items()}
