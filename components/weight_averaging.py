"""Weight averaging with the base encoder, the mixing weight chosen on a held-out dev split.

A query encoder fine-tuned on a few hundred distilled lists can forget what made the base model
good (all-MiniLM-L6-v2 was trained on a billion pairs). Interpolating the weights,

    θ(α) = (1 − α) · θ_base + α · θ_tuned,        α ∈ [0, 1],

keeps the fine-tuned direction at a chosen strength (WiSE-FT, Wortsman et al. 2022): α = 0 is the
base model, α = 1 the fine-tuned one. α is picked on dev questions held out from training and
scored against the teacher's own labels, never against the test split's judgements, so the choice
is available in the black-box setting. Ties go to the smaller α: the base model is the safer bet.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Optional, Sequence


def interpolate(base: Mapping[str, Any], tuned: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    """``(1 − α)·base + α·tuned`` for every floating-point tensor; other entries (integer buffers
    such as position ids) are taken from ``tuned``. Both state dicts must have the same keys."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if base.keys() != tuned.keys():
        missing = sorted(set(base) ^ set(tuned))[:5]
        raise ValueError(f"the two models differ in their parameters (e.g. {missing}): not the same architecture")
    return {
        name: (1.0 - alpha) * base[name] + alpha * t if t.is_floating_point() else t
        for name, t in tuned.items()
    }


def pick_alpha(alphas: Sequence[float], scores: Sequence[float]) -> float:
    """The α with the best dev score; among equal scores, the smallest (closest to the base)."""
    if not alphas or len(alphas) != len(scores):
        raise ValueError("need one dev score per alpha")
    best = max(scores)
    return min(a for a, s in zip(alphas, scores) if s == best)


def dev_split(question_ids: Sequence[str], fraction: float, seed: int, group_of: Optional[Mapping[str, str]] = None) -> set[str]:
    """A fixed random ``fraction`` of the questions (at least one group when the fraction is
    positive and there are two groups or more; never all of them), the same for the same ids and
    seed whatever their order.

    With ``group_of`` (question id → group, e.g. the title of the document a question is about),
    whole groups are held out. Test questions usually concern documents no training question
    touched (SQuAD's split is by article); a dev split that shares documents with training rewards
    memorising those documents and picks too large an α. Questions missing from ``group_of`` are
    groups of their own.
    """
    ids = sorted(set(question_ids))
    if fraction <= 0 or len(ids) < 2:
        return set()
    group_of = group_of or {}
    members: dict[str, list[str]] = {}
    for q in ids:
        members.setdefault(group_of.get(q, "\0" + q), []).append(q)
    groups = sorted(members)
    random.Random(seed).shuffle(groups)
    want, dev = max(1, round(fraction * len(ids))), set()
    for g in groups[:-1]:  # the last group always stays in training
        if len(dev) >= want:
            break
        dev.update(members[g])
    return dev
