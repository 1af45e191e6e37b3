"""What every job shares: argument parsing into one ``Config``, joining Ray, and clean failures."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

from components.config import Config, EndpointConfig, RayConfig, load_config
from components.call_cache import Send
from components.errors import IdistillError
from components.llm.backends import Persist


def add_config_arguments(parser: argparse.ArgumentParser, llm_options: bool = False) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config (default: the embedded local defaults)")
    parser.add_argument("--run-dir", metavar="DIR", help="run directory, local path or s3:// prefix (sets run_dir)")
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config field by dotted path, e.g. --set encoder.batch_size=32 (repeatable)",
    )
    if llm_options:
        parser.add_argument(
            "--llm-url",
            dest="llm_urls",
            metavar="URL",
            action="append",
            default=[],
            help="OpenAI-compatible base URL of a teacher endpoint, e.g. http://127.0.0.1:8000/v1 (repeatable; "
            "replaces labels.endpoints; the model is asked from its /v1/models)",
        )


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"run_dir={args.run_dir}")
    if getattr(args, "llm_urls", None):
        overrides.append("labels.endpoints=" + json.dumps([{"base_url": u} for u in args.llm_urls]))
    return load_config(args.config, overrides)


_STAGE_OUTPUTS: dict[tuple[str, str, tuple], Any] = {}


def stage(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a stage at most once per process for a given config.

    Each stage calls the stages it needs, so ``idistill train-ranker`` alone works on a fresh run
    directory; within one process (the pipeline) a stage already run for the same config returns
    its output at once instead of re-checking (and re-logging) everything upstream.
    """

    @functools.wraps(fn)
    def wrapper(cfg: Config, *args: Any, **kwargs: Any) -> Any:
        # plain arguments (an ablation's name) are part of the key; objects (a loaded collection) are not
        plain = tuple(a for a in args if isinstance(a, (str, int)))
        key = (f"{fn.__module__}.{fn.__qualname__}", cfg.model_dump_json(), plain)
        if key not in _STAGE_OUTPUTS:
            _STAGE_OUTPUTS[key] = fn(cfg, *args, **kwargs)
        return _STAGE_OUTPUTS[key]

    return wrapper


def forget_stage_outputs() -> None:
    """Make every stage check its outputs on disk again (a new pipeline run)."""
    _STAGE_OUTPUTS.clear()


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


def job_main(
    description: str,
    run: Callable[[Config], object],
    argv: Optional[Sequence[str]] = None,
    llm_options: bool = False,
    prog: Optional[str] = None,
) -> int:
    """Parse ``--config/--run-dir/--set``, run the stage, and turn user errors into one clear line."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, llm_options)
    args = parser.parse_args(argv)
    return run_guarded(lambda: run(config_from_args(args)))


def run_guarded(fn: Callable[[], object]) -> int:
    try:
        fn()
    except IdistillError as e:
        print(f"idistill: error: {e}", file=sys.stderr)
        return 2
    return 0


@contextlib.contextmanager
def lazy_sender(
    open_endpoints: Callable[[], ContextManager[list[EndpointConfig]]],
    fan_out: Callable[[list[dict[str, Any]], list[EndpointConfig], Persist], Iterator[Any]],
    ray_cfg: RayConfig,
) -> Iterator[Send]:
    """A ``send`` for ``call_cache.complete`` that brings up the endpoints (perhaps a local
    llama.cpp server) and Ray on its first call only, so a fully cached rerun starts neither."""
    with contextlib.ExitStack() as stack:
        pool: list[list[EndpointConfig]] = []

        def send(rows: list[dict[str, Any]], persist: Persist) -> Iterator[Any]:
            if not pool:
                pool.append(stack.enter_context(open_endpoints()))
                init_ray(ray_cfg)
            return fan_out(rows, pool[0], persist)

        yield send
