"""One run of the pipeline: its config, its collection and what its stages produced.

Stages call the stages they need (``train_ranker`` labels first, labelling builds candidates
first), so a single-stage job on a fresh run directory works. Within one run a stage already done
returns its output at once instead of re-checking (and re-logging) everything upstream. That memo
lives on the ``Run``, not in the module: a new ``Run`` (a new job, a new test) checks its outputs
on disk again, and two runs in one process never see each other's outputs.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional, TypeVar

from components import storage
from components.config import Config, RayConfig, load_config
from components.corpus import Collection, load_collection

T = TypeVar("T")


class Run:
    """What every stage receives: the config, the collection (loaded once, on first use) and the
    outputs of the stages already run for it."""

    def __init__(self, cfg: Config, collection: Optional[Collection] = None) -> None:
        self.cfg = cfg
        self._collection = collection
        self._outputs: dict[tuple[str, tuple[Any, ...]], Any] = {}

    @property
    def collection(self) -> Collection:
        if self._collection is None:
            self._collection = load_collection(self.cfg.data.path, self.cfg.data.on_invalid)
        return self._collection

    def once(self, key: tuple[str, tuple[Any, ...]], compute: Callable[[], T]) -> T:
        if key not in self._outputs:
            self._outputs[key] = compute()
        return self._outputs[key]


def stage(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a stage at most once per ``Run`` (plain arguments, such as an ablation's name, are part
    of the key)."""

    @functools.wraps(fn)
    def wrapper(run: Run, *args: Any) -> T:
        return run.once((f"{fn.__module__}.{fn.__qualname__}", args), lambda: fn(run, *args))

    return wrapper


def init_ray(cfg: RayConfig) -> None:
    """Join the cluster named by the config or ``RAY_ADDRESS`` (``ray job submit`` sets it), else
    start a local one sized by the config: explicit CPUs and a small object store keep a laptop usable."""
    import ray

    if ray.is_initialized():
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(num_cpus=cfg.num_cpus, object_store_memory=cfg.object_store_memory, include_dashboard=False)


def run_config(run_dir: str, config: Optional[str] = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config a run recorded (or the defaults for a run without a manifest), with
    ``config`` replacing it and ``overrides`` on top; ``run_dir`` is always the one given."""
    manifest = storage.join(run_dir, "manifest.json")
    recorded = storage.read_json(manifest).get("config") if config is None and storage.exists(manifest) else None
    return load_config(config, [*overrides, f"run_dir={run_dir}"], base=recorded)
