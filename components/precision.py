"""The arithmetic a forward pass runs in: fp32, or bf16 under autocast (``train.precision``).

bf16 autocast runs the matrix products of a transformer in bfloat16 while the weights, their
gradients and the optimizer's state stay fp32, so no loss scaling is needed (bf16 has fp32's
exponent range) and a checkpoint is the same either way. It is how the arithmetic is done, like
the device, not what a model learns from: a model's recorded inputs do not include it (switching it
makes no model out of date), but the ranker's cached scores are kept per precision, since Stage 2
learns from them (``distill.rescore``). What it buys is measured by
``benchmarks/train_throughput.py --precision bf16`` against its fp32 run (README, "Performance and
scale"). Losses are computed on fp32 copies of the scores (``ranker.pair_logits``,
``training.RetrieverStage``): a log-sum-exp over a list in bf16 keeps three significant digits.
"""

from __future__ import annotations

from typing import Any, Literal

Precision = Literal["fp32", "bf16"]


def autocast(precision: Precision, device: Any) -> Any:
    """A context in which forward passes on ``device`` run at ``precision`` (fp32: a no-op)."""
    import torch

    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")
