"""What every job shares: argument parsing into one ``Config`` and a ``Run``, and clean failures."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

from components.config import Config, load_config
from components.errors import IdistillError
from components.run import Run


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


def job_main(
    description: str,
    stage: Callable[[Run], object],
    argv: Optional[Sequence[str]] = None,
    llm_options: bool = False,
    prog: Optional[str] = None,
) -> int:
    """Parse ``--config/--run-dir/--set``, run the stage on a new ``Run``, and turn user errors
    into one clear line."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, llm_options)
    args = parser.parse_args(argv)
    return run_guarded(lambda: stage(Run(config_from_args(args))))


def entry_point(description: str, stage: Callable[[Run], object], llm_options: bool = False) -> Callable[..., int]:
    """A job module's ``main(argv=None, prog=None)``: the stage behind the shared arguments."""

    def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
        return job_main(description, stage, argv, llm_options, prog)

    return main


def run_guarded(fn: Callable[[], object]) -> int:
    try:
        fn()
    except IdistillError as e:
        print(f"idistill: error: {e}", file=sys.stderr)
        return 2
    return 0
