"""Retrieval quality: top-k answer accuracy (DPR) and rank metrics from ``ir-measures``.

Top-k accuracy is the fraction of questions with at least one *hit* in the top k. A hit is a
passage containing a gold answer (DPR matching) when the collection has answer strings, otherwise a
judged-relevant document (success@k). Recall@k, MRR@10 and nDCG@10 are computed by ir-measures
(pytrec_eval underneath), never by hand, so they match what other IR tools report.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

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


def rank_metrics(hits: Hits, question_ids: Sequence[str], qrels: Qrels, ks: Sequence[int]) -> dict[str, float]:
    """Recall@k for each k, MRR@10 and nDCG@10 over the judged questions, by ir-measures."""
    run = {}
    for qid, ids in zip(question_ids, hits.ids):
        # Scores can tie (BM25 zeros) and ir-measures breaks ties by doc id: score by rank instead,
        # so the metrics see exactly the order the retriever returned.
        run[qid] = {d: float(len(ids) - r) for r, d in enumerate(ids)}
    judged = {q: docs for q, docs in qrels.items() if q in run}
    measures = [RR @ 10, nDCG @ 10] + [R @ k for k in ks]
    values = ir_measures.calc_aggregate(measures, judged, run)
    out = {"mrr@10": values[RR @ 10], "ndcg@10": values[nDCG @ 10]}
    out.update({f"recall@{k}": values[R @ k] for k in ks})
    return {name: float(v) for name, v in out.items()}
