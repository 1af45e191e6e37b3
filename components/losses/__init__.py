"""Training objectives, one module each with its formula in the docstring, and one registry per
stage: name → loss class. A stage's config names its loss; the config's choices are these names,
and the training loop builds the object with ``from_settings(stage settings)`` (as
sentence-transformers passes loss objects to its trainer). A new loss is one module and one entry.

Stage 1 (the ranker learns the LLM's permutations): ``listmle`` (default), ``listnet`` and
``lambdaloss`` (ablations); each is called as ``loss(scores, mask)`` with the scores in the
teacher's order. Stage 2 (the retriever matches the ranker): ``kl`` and ``kl_negatives`` (the
same with a bank of corpus passages as extra negatives), called as
``loss(retriever_scores, ranker_scores, mask, negative_scores, negative_mask)``; a loss whose
``uses_negatives`` is False ignores the last two.
"""

from components.losses.kl import DistillKLLoss, distill_kl_loss
from components.losses.kl_negatives import DistillKLNegativesLoss, distill_kl_negatives_loss
from components.losses.lambdaloss import LambdaLoss, lambda_loss
from components.losses.listmle import ListMLELoss, listmle_loss
from components.losses.listnet import ListNetLoss, listnet_loss

RANKER_LOSSES = {cls.name: cls for cls in (ListMLELoss, ListNetLoss, LambdaLoss)}
RETRIEVER_LOSSES = {cls.name: cls for cls in (DistillKLLoss, DistillKLNegativesLoss)}

__all__ = [
    "RANKER_LOSSES", "RETRIEVER_LOSSES", "DistillKLLoss", "DistillKLNegativesLoss", "LambdaLoss", "ListMLELoss", "ListNetLoss",
    "distill_kl_loss", "distill_kl_negatives_loss", "lambda_loss", "listmle_loss", "listnet_loss",
]
