"""What a loss object is: a name for the config, a way to build it from its stage's settings, and
a call. Stage 1: ``loss(scores, mask)`` over scores in the teacher's order. Stage 2:
``loss(retriever_scores, ranker_scores, mask, negative_scores, negative_mask)``."""

from __future__ import annotations

from typing import Any, Optional

import torch


class ListwiseLoss:
    """Base of the ranker's losses; one with options overrides ``from_settings``."""

    name: str

    @classmethod
    def from_settings(cls, settings: Any) -> "ListwiseLoss":
        return cls()

    def __call__(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class DistillationLoss:
    """Base of the retriever's losses: a student and a teacher temperature from the settings;
    ``uses_negatives`` says whether it needs the bank of corpus negatives."""

    name: str
    uses_negatives = False

    def __init__(self, tau_retriever: float = 1.0, tau_ranker: float = 1.0) -> None:
        self.tau_retriever, self.tau_ranker = tau_retriever, tau_ranker

    @classmethod
    def from_settings(cls, settings: Any) -> "DistillationLoss":
        return cls(settings.tau_retriever, settings.tau_ranker)

    def __call__(self, retriever_scores: torch.Tensor, ranker_scores: torch.Tensor, mask: torch.Tensor,
                 negative_scores: Optional[torch.Tensor] = None, negative_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        raise NotImplementedError
