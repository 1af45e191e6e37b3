"""What Stage 2 learns from: per question, its candidates and a teacher's scores of them.

The teacher is the Stage 1 ranker in the method itself; the ablations replace it with the LLM's
own permutation (``direct_lists``) or the gold judgements (``supervised_lists``), to show what
the ranker buys. Rows are built for the Ray Train loop: padded to one width, with a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping, Optional, Sequence

import numpy as np

from components.index import FaissIndex
from components.storage import content_hash
from components.distill.spread import mean_spread, to_spread
from components.labelling import USABLE

# Scores a new candidate list per question, given each candidate's first-stage cosine (the ranker
# can; a fixed LLM permutation cannot), caching them at the given URI: what lets Stage 2 refresh
# its candidates.
Rescore = Callable[[list[str], list[list[str]], list[list[float]], Optional[str]], list[np.ndarray]]

GOLD = "the judged-relevant passages"

# Hard targets: every positive equally likely, negatives at (numerically) zero, whatever tau_r.
HARD_NEGATIVE = -1e4


@dataclass
class Lists:
    """What Stage 2 learns from: each question's candidates and the teacher's scores of them, plus
    the dev targets that choose the weight average."""

    question_ids: list[str]
    questions: list[str]
    candidates: list[list[str]]
    teacher: list[np.ndarray]
    teacher_inputs: Any  # identifies what produced the scores, for resuming
    dev_targets: dict[str, dict[str, int]]  # question → target passage → gain
    dev_target: str  # what the targets are, for the manifest and report
    rescore: Optional[Rescore] = None

    def subset(self, keep: list[int]) -> tuple[list[str], list[list[str]], list[np.ndarray]]:
        return [self.questions[i] for i in keep], [self.candidates[i] for i in keep], [self.teacher[i] for i in keep]


def teacher_top(labels: Sequence[Mapping[str, Any]], k: int = 1) -> dict[str, dict[str, int]]:
    """The teacher LLM's top ``k`` passages of each usable label, graded: the dev target
    available without gold judgements."""
    return {r["question_id"]: {d: k - i for i, d in enumerate(r["ranked_ids"][:k])}
            for r in labels if r["status"] in USABLE and len(r["ranked_ids"])}


def teacher_target(k: int, of: str = "") -> str:
    """What ``teacher_top(labels, k)`` holds, in words, for the manifest and the report
    (``of``: among what, when not the candidates)."""
    among = f" of {of}" if of else ""
    return f"the teacher LLM's first passage{among}" if k == 1 else f"the teacher LLM's top {k} passages{among} (gains {k} to 1)"


def direct_lists(labels: Sequence[Mapping[str, Any]], dev_top_k: int = 1) -> Optional[Lists]:
    """The ``direct`` ablation: the teacher LLM's permutation itself is the target (score
    ``-position``) on the questions with a usable label; None when there is none."""
    usable = [r for r in labels if r["status"] in USABLE]
    if not usable:
        return None
    candidates = [list(r["ranked_ids"]) for r in usable]
    teacher = [-np.arange(len(c), dtype=np.float32) for c in candidates]
    return Lists([r["question_id"] for r in usable], [r["question"] for r in usable], candidates, teacher,
                 content_hash(["direct", candidates, [t.tolist() for t in teacher]]), teacher_top(labels, dev_top_k),
                 teacher_target(dev_top_k))


def teacher_where_labelled(
    question_ids: Sequence[str], candidates: Sequence[Sequence[str]], scores: Sequence[np.ndarray],
    labels: Sequence[Mapping[str, Any]], spread: Optional[float], keep_ranker: Collection[str] = (),
) -> tuple[list[np.ndarray], int]:
    """``scores`` (the ranker's, at their spread) with each LLM-labelled list's replaced by the LLM's own
    permutation of it, ``-position`` in candidate order, scaled to ``spread`` (None: the mean spread of
    ``scores``), so both kinds of target are as sharp. The ranker imitates the LLM; where the LLM's label
    exists it is the better target. A label whose ids are not exactly the list's keeps the ranker's
    scores, and so do the ``keep_ranker`` questions (the held-out dev ones, on which the ranker is
    checked against the LLM). Returns the scores and how many lists now carry the LLM's."""
    ranked = {r["question_id"]: list(r["ranked_ids"]) for r in labels if r["status"] in USABLE}
    replace = [i for i, (q, ids) in enumerate(zip(question_ids, candidates))
               if q in ranked and q not in keep_ranker and sorted(ranked[q]) == sorted(ids) and len(set(ids)) > 1]
    permutations = []
    for i in replace:
        position = {d: p for p, d in enumerate(ranked[question_ids[i]])}
        permutations.append(-np.array([position[d] for d in candidates[i]], np.float32))
    out = [np.asarray(s, np.float32) for s in scores]
    for i, target in zip(replace, to_spread(permutations, spread if spread is not None else mean_spread(out))):
        out[i] = target.astype(np.float32)
    return out, len(replace)


def supervised_lists(
    candidates: Mapping[str, list[Any]], positives: Mapping[str, set[str]]
) -> Optional[Lists]:
    """The ``supervised`` ablation: the judged-relevant candidates against the other candidates as
    hard negatives, on the questions with at least one positive among their candidates; None when
    no question has one."""
    keep = [i for i, (qid, ids) in enumerate(zip(candidates["question_id"], candidates["candidate_ids"]))
            if positives.get(qid, set()) & set(ids)]
    if not keep:
        return None
    question_ids = [candidates["question_id"][i] for i in keep]
    lists = [list(candidates["candidate_ids"][i]) for i in keep]
    teacher = [np.array([0.0 if d in positives[q] else HARD_NEGATIVE for d in ids], np.float32) for q, ids in zip(question_ids, lists)]
    return Lists(question_ids, [candidates["question"][i] for i in keep], lists, teacher,
                 content_hash(["supervised", lists, [t.tolist() for t in teacher]]),
                 {q: {d: 1 for d in docs} for q, docs in positives.items()}, GOLD)


def _padded(ids: list[str], scores: np.ndarray, width: int) -> dict[str, Any]:
    return {"ranker_scores": np.pad(scores, (0, width - len(ids))).astype(np.float32), "mask": np.arange(width) < len(ids)}


def _padded_texts(passages: dict[str, str], ids: list[str], width: int) -> list[str]:
    """The passages' text, padded with empty strings to ``width`` (masked out by ``_padded``'s mask)."""
    return [passages[d] for d in ids] + [""] * (width - len(ids))


def frozen_rows(
    index: FaissIndex, questions: list[str], candidates: list[list[str]], teacher: list[np.ndarray],
    bank: Optional[Sequence[str]] = None, texts: Optional[dict[str, str]] = None,
) -> list[dict[str, Any]]:
    """Stage 2 rows over the index's stored passage vectors (passage side frozen). With a
    negative ``bank`` (passage ids), each row also says which bank rows are its own candidates
    (``negative_index``, -1 for a candidate not in the bank and for padding). With ``texts``
    (passage id → text; ``passages: branch``) each row carries its passages' text too."""
    width = max(len(c) for c in candidates)
    bank_row = {d: i for i, d in enumerate(bank or [])}
    rows = []
    for question, ids, s in zip(questions, candidates, teacher):
        vecs = np.zeros((width, index.manifest["dim"]), np.float32)
        vecs[: len(ids)] = index.vectors(ids)
        row = {"question": question, "passage_emb": vecs, **_padded(ids, s, width)}
        if bank is not None:
            row["negative_index"] = np.array([bank_row.get(d, -1) for d in ids] + [-1] * (width - len(ids)), np.int64)
        if texts is not None:
            row["passages"] = _padded_texts(texts, ids, width)
        rows.append(row)
    return rows


def text_rows(passages: dict[str, str], questions: list[str], candidates: list[list[str]], teacher: list[np.ndarray]) -> list[dict[str, Any]]:
    """Stage 2 rows with the passages' text, encoded in the loop (passage side trained)."""
    width = max(len(c) for c in candidates)
    return [{"question": q, "passages": _padded_texts(passages, ids, width), **_padded(ids, s, width)}
            for q, ids, s in zip(questions, candidates, teacher)]
