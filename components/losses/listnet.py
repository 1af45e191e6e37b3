"""ListNet (Cao et al., 2007), top-one approximation: cross-entropy between the teacher's and the
ranker's distributions over which passage comes first.

A black-box LLM gives an order, not scores, so the teacher's distribution is built from the order
alone, with reciprocal-rank relevance ``y_i = 1 / i`` for the passage at position ``i`` (1-based)::

    P_teacher(i) = y_i / sum_j y_j,      P_ranker(i) = exp(s_i) / sum_j exp(s_j)

    L(s) = - sum_i P_teacher(i) · log P_ranker(i)

Unlike ListMLE it never asks the ranker to reproduce the tail's exact order, only to put
probability mass roughly where the teacher's ranks put it. An ablation choice for Stage 1.
"""

from __future__ import annotations

import torch

from components.losses.base import ListwiseLoss


def reciprocal_rank_relevance(n: int, mask: torch.Tensor) -> torch.Tensor:
    """``1 / position`` (1-based) for each real entry of a teacher-ordered row, 0 for padding."""
    positions = torch.arange(1, n + 1, device=mask.device, dtype=torch.float32)
    return (1.0 / positions).expand(mask.shape).masked_fill(~mask, 0.0)


def listnet_loss(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ListNet over a batch.

    Args:
        scores: ``(batch, n)`` ranker scores, each row in the teacher's order (best first).
        mask: ``(batch, n)`` booleans, False for padding at the end of shorter lists.
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    relevance = reciprocal_rank_relevance(scores.shape[-1], mask).to(scores.dtype)
    target = relevance / relevance.sum(-1, keepdim=True)
    log_p = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).masked_fill(~mask, 0.0)
    return -(target * log_p).sum(-1).mean()


class ListNetLoss(ListwiseLoss):
    """ListNet against reciprocal-rank relevance of the teacher's order (an ablation of Stage 1)."""

    name = "listnet"

    def __call__(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return listnet_loss(scores, mask)
