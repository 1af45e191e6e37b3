"""What every job shares: argument parsing into one ``Config`` and a ``Run``, a quiet console
with the full logs under ``RUN/logs/``, and clean failures."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from components import console, storage
from components.config import Config, load_config
from components.errors import IdistillError
from components.run import Run, run_config


def add_config_arguments(parser: argparse.ArgumentParser, llm_options: bool = False) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config (default: the embedded local defaults)")
    parser.add_argument(
        "--run-dir", metavar="DIR",
        help="run directory, local path or s3:// prefix (sets run_dir). A run that recorded its config (RUN/manifest.json, "
        "written by 'idistill run') starts from that config, so a stage rerun or a resumed run reads what the run was "
        "started with; --config replaces it, --set applies on top",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config field by dotted path, e.g. --set encoder.batch_size=32 (repeatable)",
    )
    parser.add_argument(
        "--verbose", action="store_true",
        help="show Ray's, transformers' and the workers' logs live (by default they go to RUN/logs/ and the console "
        "shows each stage's status, progress and results)",
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
    if getattr(args, "llm_urls", None):
        overrides.append("labels.endpoints=" + json.dumps([{"base_url": u} for u in args.llm_urls]))
    if not args.run_dir:
        return load_config(args.config, overrides)
    recorded = storage.join(args.run_dir, "manifest.json")
    if args.config is None and storage.exists(recorded):
        console.say(f"config: the run's recorded config ({recorded}){' + --set' if overrides else ''}")
    return run_config(args.run_dir, args.config, overrides)


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

    def job() -> None:
        cfg = config_from_args(args)
        with contextlib.nullcontext() if args.verbose else logs_to_run_dir(cfg, stage.__name__):
            stage(Run(cfg))

    return run_guarded(job)


@contextlib.contextmanager
def logs_to_run_dir(cfg: Config, job: str) -> Iterator[None]:
    """The quiet console: everything but ``console.say`` and the bars goes to ``RUN/logs/<job>.log``
    (through a local file, copied up when the run directory is on S3). A failure's traceback
    goes to the log too, and the error itself still reaches the terminal."""
    remote = storage.is_remote(cfg.run_dir)
    path = (os.path.join(tempfile.mkdtemp(prefix="idistill-logs-"), f"{job}.log") if remote
            else os.path.join(cfg.run_dir, "logs", f"{job}.log"))
    where = storage.join(cfg.run_dir, "logs", f"{job}.log") if remote else path
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # the driver draws its own bars
    try:
        with console.quiet(path):
            console.say(f"logs: {where} (--verbose shows them here)")
            try:
                yield
            except BaseException:
                traceback.print_exc()  # into the log, beside what led to it
                raise
    finally:
        if remote:
            with contextlib.suppress(Exception):
                storage.write_bytes(where, Path(path).read_bytes())
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def entry_point(description: str, stage: Callable[[Run], object], llm_options: bool = False) -> Callable[..., int]:
    """A job module's ``main(argv=None, prog=None)``: the stage behind the shared arguments."""

    def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
        return job_main(description, stage, argv, llm_options, prog)

    return main


def run_guarded(fn: Callable[[], object]) -> int:
    try:
        fn()
    except IdistillError as e:
        print(f"idistill: error: {e}", file=sys.stderr)  # the console is the terminal again here
        return 2
    return 0
