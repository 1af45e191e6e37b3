"""KL distillation (Stage 2): the retriever's distribution over a candidate list should match the
ranker's.

With ranker scores ``r`` and retriever scores ``q`` (query · passage) over the same ``n``
candidates, and temperatures ``tau_r`` and ``tau_q``::

    P = softmax(r / tau_r)        Q = softmax(q / tau_q)
    L = KL(P || Q) = sum_i P_i (log P_i - log Q_i)

averaged over questions. ``P`` is a constant (the ranker is frozen), so minimising L is
cross-entropy against soft targets; a lower ``tau_r`` makes the targets sharper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from components.losses.base import DistillationLoss


def distill_kl_loss(
    retriever_scores: torch.Tensor,
    ranker_scores: torch.Tensor,
    tau_retriever: float = 1.0,
    tau_ranker: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean KL(ranker ‖ retriever) over a batch of ``(batch, n)`` score lists."""
    if mask is None:
        mask = torch.ones_like(retriever_scores, dtype=torch.bool)
    log_q = F.log_softmax((retriever_scores / tau_retriever).masked_fill(~mask, float("-inf")), dim=-1)
    log_p = F.log_softmax((ranker_scores.detach() / tau_ranker).masked_fill(~mask, float("-inf")), dim=-1)
    p = log_p.exp()
    terms = (p * (log_p - log_q)).masked_fill(~mask, 0.0)
    return terms.sum(-1).mean()


class DistillKLLoss(DistillationLoss):
    """Stage 2's default: KL(ranker ‖ retriever) over each question's candidates."""

    name = "kl"

    def __call__(self, retriever_scores: torch.Tensor, ranker_scores: torch.Tensor, mask: torch.Tensor, *_: Any) -> torch.Tensor:
        return distill_kl_loss(retriever_scores, ranker_scores, self.tau_retriever, self.tau_ranker, mask)
