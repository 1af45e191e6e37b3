"""Training objectives, one module each with its formula in the docstring, and one registry per
stage: name → loss class. A stage's config names its loss; the config's choices are these names,
and the training loop builds the object with ``from_settings(stage settings)`` (as
sentence-transformers passes loss objects to its trainer). A new loss is one module and one entry.

Stage 1 (the ranker learns the LLM's permutations): ``listmle`` (default), ``listnet`` and
``lambdaloss`` (ablations); each is called as ``loss(scores, mask)`` with the scores in the
teacher's order. Stage 2 (the retriever matches the ranker): ``kl``, called as
``loss(retriever_scores, ranker_scores, mask)``.
"""

from components.losses.kl import DistillKLLoss, distill_kl_loss
from components.losses.lambdaloss import LambdaLoss, lambda_loss
from components.losses.listmle import ListMLELoss, listmle_loss
from components.losses.listnet import ListNetLoss, listnet_loss

RANKER_LOSSES = {cls.name: cls for cls in (ListMLELoss, ListNetLoss, LambdaLoss)}
RETRIEVER_LOSSES = {cls.name: cls for cls in (DistillKLLoss,)}

__all__ = [
    "RANKER_LOSSES", "RETRIEVER_LOSSES", "DistillKLLoss", "LambdaLoss", "ListMLELoss", "ListNetLoss",
    "distill_kl_loss", "lambda_loss", "listmle_loss", "listnet_loss",
]
