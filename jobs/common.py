"""What every job shares: argument parsing into one ``Config``, joining Ray, and clean failures."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from components.config import Config, RayConfig, load_config
from components.errors import IdistillError


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
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


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"run_dir={args.run_dir}")
    return load_config(args.config, overrides)


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
    description: str, run: Callable[[Config], object], argv: Optional[Sequence[str]] = None, prog: Optional[str] = None
) -> int:
    """Parse ``--config/--run-dir/--set``, run the stage, and turn user errors into one clear line."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    return run_guarded(lambda: run(config_from_args(args)))


def run_guarded(fn: Callable[[], object]) -> int:
    try:
        fn()
    except IdistillError as e:
        print(f"idistill: error: {e}", file=sys.stderr)
        return 2
    return 0
