"""The pooled dev judge: the teacher LLM ranks what every candidate weight average retrieves.

The dev targets first used to choose the weight average were the teacher's top passages among the
*base* retriever's candidates. Every such passage is in the base's own top n, so "retrieve the
teacher's passages" rewards staying at the base, whatever the trained encoder does elsewhere. On
NFCorpus with a perfect simulated teacher, gold nDCG@10 on held-out questions rose from α = 0 to
α = 1 (0.321 → 0.340) while that target fell (0.694 → 0.667): no trained encoder could be chosen.
Pooling, as TREC assessors do, judges the union of every α's top ``depth`` in one listwise call
(sliding windows when the pool is longer than ``labels.window``), in a seeded shuffle so that no α
gains from the teacher's position bias; each α is then scored against the teacher's top k of the
pool (graded k to 1). On the same questions that target rose with α as gold did (0.664 → 0.686).
It costs one labelling pass over the dev questions, stored under the stage's ``dev/judge``, so a
rerun pays for no call twice.
"""

from __future__ import annotations

from typing import Any, Sequence

from components.config import Config
from components.corpus import Corpus
from components.distill.lists import teacher_target, teacher_top
from components.stages.labels import rank_lists


def pools(ranked_per_alpha: Sequence[Sequence[Sequence[str]]], depth: int) -> list[list[str]]:
    """Per question, the union of every α's top ``depth`` passage ids, in order of first
    appearance (α ascending): ``ranked_per_alpha[a][q]`` is α number a's ranking of question q."""
    if not ranked_per_alpha:
        return []
    out = []
    for q in range(len(ranked_per_alpha[0])):
        seen: dict[str, None] = {}
        for ranked in ranked_per_alpha:
            seen.update(dict.fromkeys(ranked[q][:depth]))
        out.append(list(seen))
    return out


def judge_pools(
    cfg: Config, corpus: Corpus, question_ids: list[str], questions: list[str], pooled: list[list[str]], store_uri: str,
) -> tuple[dict[str, dict[str, int]], str, dict[str, Any]]:
    """Have the teacher LLM rank each question's pool; return the dev targets (its top
    ``train.retriever.dev_top_k`` of each usable ranking), what they are in words, and what the
    judging cost."""
    k = cfg.train.retriever.dev_top_k
    passages = dict(zip(corpus.ids, corpus.passages()))
    labels_cfg = cfg.labels.model_copy(update={"shuffle_candidates": True, "passes": 1})
    rows, stats, model, _ = rank_lists(labels_cfg, cfg.ray, cfg.seed, question_ids, questions, pooled, passages.__getitem__, store_uri)
    targets = teacher_top(rows, k)
    what = teacher_target(k, f"the pooled top {cfg.train.retriever.dev_pool_depth} of every α")
    cost = {"judged": len(targets), "of": len(question_ids), "calls_sent": stats.sent, "calls_cached": stats.cached,
            "mean_pool": round(sum(map(len, pooled)) / max(1, len(pooled)), 1), "teacher": model}
    return targets, what, cost
