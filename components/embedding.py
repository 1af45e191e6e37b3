"""Corpus embedding as a Ray Data job: an actor pool of encoders, GPUs when the cluster has them.

Each actor loads the model once and encodes batches streamed to it; the driver only collects the
float32 vectors by row number, so the same code embeds a demo corpus on a laptop and millions of
passages on a GPU worker group. The driver's bar counts passages as their vectors arrive. A small
corpus on a cluster without GPUs is embedded in the driver instead (``in_driver``), where Ray
Data's start-up would cost more than it saves.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from components.config import EncoderConfig, RayConfig
from components import console, encoders
from components.row_collect import collect_rows

_BATCHES_PER_CALL = 8  # model batches per actor call at most: room to re-batch them by token count
_CALLS_PER_ACTOR = 4  # actor calls per actor at least, so no actor idles while another finishes


class _EncodeActor:
    """One model per actor, reused for every batch the actor receives."""

    def __init__(self, encoder_cfg: dict[str, Any]) -> None:
        import tempfile

        self.cfg = EncoderConfig(**encoder_cfg)
        self.scratch = tempfile.TemporaryDirectory()  # an s3:// model is fetched on the actor's node
        self.model = encoders.load_encoder(encoders.fetched(self.cfg, self.scratch.name))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = encoders.encode_corpus(self.model, [str(t) for t in batch["text"]], self.cfg)
        return {"row": batch["row"], "embedding": vectors}


def _rows_per_call(passages: int, batch_size: int, actors: int) -> int:
    """Rows an actor encodes per call: several model batches (re-batched by tokens inside), but
    small enough that a small corpus still spreads over every actor."""
    return max(batch_size, min(batch_size * _BATCHES_PER_CALL, passages // (actors * _CALLS_PER_ACTOR)))


def _shortest_first(texts: list[str]) -> list[int]:
    """Row order by characters, shortest first, so each block an actor receives holds passages of
    similar length (the actor then batches them by tokens); characters, because tokenizing millions of
    passages in the driver would cost more than it saves."""
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def _embed_in_driver(texts: list[str], encoder_cfg: EncoderConfig) -> np.ndarray:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        model = encoders.load_encoder(encoders.fetched(encoder_cfg, scratch))
        with console.bar(len(texts), "embed", "passage") as progress:
            return encoders.encode_corpus(model, texts, encoder_cfg, progress=progress.update)


def cluster_has_gpu() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def in_driver(passages: int, ray_cfg: RayConfig) -> bool:
    """Whether a corpus is small enough to embed in the driver: no GPU in the cluster (a GPU
    worker beats the driver's CPU at any size) and no more than ``ray.embed_in_driver_max``
    passages (``benchmarks/embed_index.py`` measures the trade)."""
    return passages <= ray_cfg.embed_in_driver_max and not cluster_has_gpu()


def embed_texts(texts: list[str], encoder_cfg: EncoderConfig, ray_cfg: RayConfig, dim: int) -> np.ndarray:
    """Embed ``texts`` with a Ray Data actor pool, or in the driver when the corpus is small
    (``in_driver``; the choice is said on the console); row ``i`` of the result belongs to ``texts[i]``.

    Requires ``ray.init`` to have been called (the jobs do it). GPUs are requested only when the
    cluster has some and the encoder is not pinned to the CPU, so a CPU cluster never waits forever
    for an accelerator.
    """
    import ray

    if in_driver(len(texts), ray_cfg):
        console.say(f"embed: {len(texts)} passages in the driver (at most ray.embed_in_driver_max={ray_cfg.embed_in_driver_max} "
                    "and no GPU: starting Ray Data actors would cost more than it saves)")
        return _embed_in_driver(texts, encoder_cfg)
    use_gpu = encoder_cfg.device != "cpu" and cluster_has_gpu()
    per_call = _rows_per_call(len(texts), encoder_cfg.batch_size, ray_cfg.embed_actors)
    blocks = max(ray_cfg.embed_actors * 2, math.ceil(len(texts) / per_call))
    order = _shortest_first(texts)
    ds = ray.data.from_items(
        [{"row": i, "text": texts[i]} for i in order], override_num_blocks=min(blocks, max(1, len(texts)))
    )
    encoded = ds.map_batches(
        _EncodeActor,
        fn_constructor_kwargs={"encoder_cfg": encoder_cfg.model_dump()},
        batch_size=per_call,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=ray_cfg.embed_actors),  # grows as CPUs allow
        num_cpus=ray_cfg.embed_cpus_per_actor,
        num_gpus=ray_cfg.embed_gpus_per_actor if use_gpu else 0,
    )
    with console.bar(len(texts), "embed", "passage") as progress:
        return collect_rows(encoded.iter_batches(batch_size=encoder_cfg.batch_size, batch_format="numpy"), len(texts),
                            "embedding", "embedding", dim, progress=progress.update)
