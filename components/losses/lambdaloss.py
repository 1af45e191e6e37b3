"""LambdaLoss (Wang et al., 2018), the NDCG-Loss2 variant: pairwise logistic losses weighted by how
much swapping the pair would change NDCG at the ranker's current ranks.

Relevance comes from the teacher's order alone, ``y_i = 1 / i`` for the passage at teacher
position ``i`` (1-based), with gains ``G_i = (2^{y_i} - 1) / maxDCG``. With ``r_i`` the rank of
passage ``i`` under the ranker's current scores (no gradient through it) and
``D(r) = log2(1 + r)``::

    δ_ij = | 1 / D(|r_i - r_j|) - 1 / D(|r_i - r_j| + 1) |

    L(s) = sum_{i, j : y_i > y_j}  δ_ij · |G_i - G_j| · log2(1 + exp(-σ (s_i - s_j)))

Pairs near the top of the ranker's list weigh most, which is what NDCG@10 rewards. An ablation
choice for Stage 1.
"""

from __future__ import annotations

import torch

from components.losses.base import ListwiseLoss
from components.losses.listnet import reciprocal_rank_relevance


def lambda_loss(scores: torch.Tensor, mask: torch.Tensor | None = None, sigma: float = 1.0) -> torch.Tensor:
    """Mean LambdaLoss (NDCG-Loss2) over a batch.

    Args:
        scores: ``(batch, n)`` ranker scores, each row in the teacher's order (best first).
        mask: ``(batch, n)`` booleans, False for padding at the end of shorter lists.
        sigma: steepness of the pairwise logistic loss.
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    n = scores.shape[-1]
    y = reciprocal_rank_relevance(n, mask).to(scores.dtype)
    gains = (2.0**y - 1.0).masked_fill(~mask, 0.0)
    discounts = 1.0 / torch.log2(torch.arange(2, n + 2, device=scores.device, dtype=scores.dtype))
    max_dcg = (gains * discounts).sum(-1, keepdim=True)  # teacher order is the ideal order
    gains = gains / max_dcg
    with torch.no_grad():  # 1-based ranks under the current scores, padding last
        order = scores.masked_fill(~mask, float("-inf")).argsort(dim=-1, descending=True)
        ranks = torch.empty_like(order).scatter_(-1, order, torch.arange(1, n + 1, device=scores.device).expand_as(order))
        gap = (ranks[:, :, None] - ranks[:, None, :]).abs().to(scores.dtype)
        delta = (1.0 / torch.log2(1.0 + gap.clamp(min=1)) - 1.0 / torch.log2(2.0 + gap)).abs()
    pairs = (y[:, :, None] > y[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    weight = delta * (gains[:, :, None] - gains[:, None, :]).abs()
    logistic = torch.nn.functional.softplus(-sigma * (scores[:, :, None] - scores[:, None, :])) / torch.log(torch.tensor(2.0))
    return (weight * logistic).masked_fill(~pairs, 0.0).sum((-2, -1)).mean()


class LambdaLoss(ListwiseLoss):
    """LambdaLoss (NDCG-Loss2++) on the teacher's order (an ablation of Stage 1)."""

    name = "lambdaloss"

    def __call__(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return lambda_loss(scores, mask)
