"""The ranker's scores put on one scale before Stage 2's teacher temperature.

    s'_ij = s_ij · spread / mean_i std_j(s_ij)

One factor for all lists, so the ranker's relative confidence between lists is kept; only its
overall scale is fixed. Why: the target softmax(s / tau_ranker) is as sharp as the ranker's scores
are spread, and rankers come out of Stage 1 with very different spreads (0.17 to 0.82 in our
NFCorpus runs, a mean within-list standard deviation). One taught by a noisy teacher scored three
times flatter than one taught by a perfect teacher, and at the same temperature its near-uniform
target taught the student to flatten its own top 20 (nDCG@10 −0.034 on test at α 1; the dev
judge rightly kept the base). The spread is chosen on dev (docs/results.md, run 7).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def mean_spread(scores: Sequence[np.ndarray]) -> float:
    """Mean within-list standard deviation over the lists of two or more candidates (0.0 when
    there are none)."""
    stds = [float(np.std(s)) for s in scores if len(s) > 1]
    return float(np.mean(stds)) if stds else 0.0


def to_spread(scores: Sequence[np.ndarray], spread: Optional[float]) -> list[np.ndarray]:
    """``scores`` scaled by one factor so that their ``mean_spread`` is ``spread``; unchanged when
    ``spread`` is None or every list is flat (there is no scale to set)."""
    current = mean_spread(scores)
    if spread is None or current == 0.0:
        return [np.asarray(s, dtype=np.float32) for s in scores]
    factor = spread / current
    return [(np.asarray(s, dtype=np.float64) * factor).astype(np.float32) for s in scores]
