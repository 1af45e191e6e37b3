"""Stage 2's target from the ranker's scores and the first stage's cosines together.

    t_ij = s_ij / σ_s + w · c_ij / σ_c,    σ_x = mean_i std_j(x_ij)

(s: the ranker's score of candidate j of list i, c: the first-stage cosine, w:
``train.retriever.first_stage_weight``). Why: a cross-encoder that Stage 1 starts from a
bi-encoder's weights and trains on ~1,000 LLM lists can come out no better than the first stage
it re-ranks, yet wrong about other passages. On NFCorpus (the hybrid student's lists, a perfect
simulated teacher) the ranker alone re-ranked the 1,590 training questions it never saw level
with the first stage (−0.001 nDCG@10 by their gold judgements), and the sum at w = 1 +0.009
[+0.006, +0.012] above it (seed 1; seed 2: −0.010 and +0.005). Each signal is divided by its
own mean within-list spread (one factor for all lists, as in ``distill.spread``), so w weighs the
two signals the same whatever spread Stage 1 left the ranker with. w = 0 is the method as
published, the ranker alone, and stays the default: the better re-ranker was the worse teacher
(the hybrid student distilled from the sum scored −0.009 [−0.016, −0.002] nDCG@10 on test
against the ranker alone, seeds 1 and 2; docs/results.md, run 21). What Stage 2 learns from is where the
ranker departs from the student's own order, and the sum gives some of that back.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from components.distill.spread import mean_spread


def fuse_first_stage(scores: Sequence[np.ndarray], cosines: Sequence[Sequence[float]], weight: float) -> list[np.ndarray]:
    """The ranker's ``scores`` plus ``weight`` times the first-stage ``cosines``, each over its mean
    within-list spread; the scores unchanged at weight 0. A signal with no spread (every list flat)
    adds nothing and is left unscaled."""
    if weight == 0:
        return [np.asarray(s, dtype=np.float32) for s in scores]
    cos = [np.asarray(c, dtype=np.float64) for c in cosines]
    if [len(s) for s in scores] != [len(c) for c in cos]:
        raise ValueError("every list needs one first-stage cosine per ranker score")
    s_spread, c_spread = mean_spread(scores) or 1.0, mean_spread(cos) or 1.0
    return [(np.asarray(s, dtype=np.float64) / s_spread + weight * c / c_spread).astype(np.float32)
            for s, c in zip(scores, cos)]
