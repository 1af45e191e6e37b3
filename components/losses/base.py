"""What a Stage 1 loss object is: a name for the config, a way to build it from the stage's
settings, and ``loss(scores, mask)`` over scores in the teacher's order."""

from __future__ import annotations

from typing import Any

import torch


class ListwiseLoss:
    """Base of the ranker's losses; one with options overrides ``from_settings``."""

    name: str

    @classmethod
    def from_settings(cls, settings: Any) -> "ListwiseLoss":
        return cls()

    def __call__(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
