"""ListMLE (Xia et al., 2008): the negative log-likelihood of the teacher's permutation under the
Plackett-Luce model of the ranker's scores.

For scores ``s`` already ordered by the teacher's permutation (best first) over ``n`` passages::

    L(s) = - sum_{i=1..n} [ s_i - log sum_{j=i..n} exp(s_j) ]

Each term is the log-probability that passage ``i`` is picked first among those not yet placed.
A black-box LLM gives only an order, never a score, and ListMLE uses exactly that.

Top-k ListMLE (Xia et al., 2009) keeps only the first ``k`` terms (``i <= k``; the sums over
``j`` still run to ``n``): the likelihood of the teacher's top k, with no claim about the order
of the rest, which listwise LLM rankers give least reliably.
"""

from __future__ import annotations

from typing import Any

import torch

from components.losses.base import ListwiseLoss


def listmle_loss(scores: torch.Tensor, mask: torch.Tensor | None = None, top_k: int | None = None) -> torch.Tensor:
    """Mean ListMLE over a batch.

    Args:
        scores: ``(batch, n)`` ranker scores, each row in the teacher's order (best first).
        mask: ``(batch, n)`` booleans, False for padding at the end of shorter lists.
        top_k: keep only the first ``top_k`` positions' terms (None: all).
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    # Padding gets -inf so it adds nothing to any log-sum-exp; its own terms are masked out below.
    masked = scores.masked_fill(~mask, float("-inf"))
    # log sum_{j>=i} exp(s_j): a log-cum-sum-exp over the reversed list.
    tail_lse = torch.logcumsumexp(masked.flip(-1), dim=-1).flip(-1)
    terms = (scores - tail_lse).masked_fill(~mask, 0.0)
    if top_k is not None:
        terms = terms[:, :top_k]
    return -(terms.sum(-1)).mean()


class ListMLELoss(ListwiseLoss):
    """Stage 1's default: ListMLE over the teacher's permutation (top-k with ``listmle_top_k``)."""

    name = "listmle"

    def __init__(self, top_k: int | None = None) -> None:
        self.top_k = top_k

    @classmethod
    def from_settings(cls, settings: Any) -> "ListMLELoss":
        return cls(settings.listmle_top_k)

    def __call__(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return listmle_loss(scores, mask, self.top_k)
