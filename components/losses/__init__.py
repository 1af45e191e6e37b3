"""Training objectives, one module each, formula in the docstring: ``listmle`` (Stage 1, the
ranker learns the LLM's permutations; ``listnet`` and ``lambdaloss`` are the listwise
alternatives for ablations) and ``kl`` (Stage 2, the retriever matches the ranker)."""

from components.losses.kl import distill_kl_loss
from components.losses.lambdaloss import lambda_loss
from components.losses.listmle import listmle_loss
from components.losses.listnet import listnet_loss

__all__ = ["distill_kl_loss", "lambda_loss", "listmle_loss", "listnet_loss"]
