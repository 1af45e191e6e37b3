"""KL distillation with corpus negatives (Stage 2): the ranker's distribution over a candidate
list, matched by the retriever's distribution over those candidates *and* a bank of other
passages from the corpus.

With ranker scores ``r`` over the ``n`` candidates, retriever scores ``q`` over the same
candidates and ``s`` over ``m`` negatives (frozen passage vectors not among the candidates)::

    P = softmax(r / tau_r)                     over the n candidates (0 on every negative)
    Q = softmax([q, s] / tau_q)                over the n candidates and the m negatives
    L = KL(P || Q) = sum_{i <= n} P_i (log P_i - log Q_i)

averaged over questions. With ``m = 0`` this is the plain ``kl`` loss. Plain KL only reorders the
candidates among themselves: nothing stops a query vector from drifting towards passages that
were never in its list, and on a general encoder with a billion pairs behind it that drift costs
more than the reordering gains (NFCorpus, perfect teacher: plain KL −0.001 nDCG@10, this loss
+0.014 to +0.019 on a dev split; see docs/results.md). The negatives carry no teacher score: they
are pushed below the candidates as a whole, which is what a top-n list says about them.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from components.losses.base import DistillationLoss


def distill_kl_negatives_loss(
    retriever_scores: torch.Tensor,
    ranker_scores: torch.Tensor,
    negative_scores: torch.Tensor,
    tau_retriever: float = 1.0,
    tau_ranker: float = 1.0,
    mask: torch.Tensor | None = None,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean KL over ``(batch, n)`` candidate scores with ``(batch, m)`` negative scores;
    ``negative_mask`` is False where a bank passage must not count (it is one of the candidates)."""
    if mask is None:
        mask = torch.ones_like(retriever_scores, dtype=torch.bool)
    if negative_mask is None:
        negative_mask = torch.ones_like(negative_scores, dtype=torch.bool)
    student = torch.cat([retriever_scores.masked_fill(~mask, float("-inf")),
                         negative_scores.masked_fill(~negative_mask, float("-inf"))], dim=-1) / tau_retriever
    log_q = F.log_softmax(student, dim=-1)[:, : retriever_scores.shape[1]]
    log_p = F.log_softmax((ranker_scores.detach() / tau_ranker).masked_fill(~mask, float("-inf")), dim=-1)
    terms = (log_p.exp() * (log_p - log_q)).masked_fill(~mask, 0.0)
    return terms.sum(-1).mean()


class DistillKLNegativesLoss(DistillationLoss):
    """``kl`` with a bank of ``train.retriever.negatives`` corpus passages in the student's softmax."""

    name = "kl_negatives"
    uses_negatives = True

    def __call__(self, retriever_scores: torch.Tensor, ranker_scores: torch.Tensor, mask: torch.Tensor,
                 negative_scores: Optional[torch.Tensor] = None, negative_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if negative_scores is None:
            negative_scores = retriever_scores.new_zeros((retriever_scores.shape[0], 0))
        return distill_kl_negatives_loss(retriever_scores, ranker_scores, negative_scores, self.tau_retriever,
                                         self.tau_ranker, mask, negative_mask)
