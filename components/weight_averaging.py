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
from typing import Any, Mapping, Sequence


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


def dev_split(question_ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """A fixed random ``fraction`` of the questions (at least one when the fraction is positive and
    there are two or more), the same for the same ids and seed whatever their order."""
    ids = sorted(set(question_ids))
    if fraction <= 0 or len(ids) < 2:
        return set()
    random.Random(seed).shuffle(ids)
    return set(ids[: min(len(ids) - 1, max(1, round(fraction * len(ids))))])
