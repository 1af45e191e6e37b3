"""``idistill``: one command, a subcommand per job, each calling the same function as
``python -m jobs.<stage>``."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from components.config import Config
from jobs.common import add_config_arguments, config_from_args, run_guarded
from jobs import evaluate, index, pipeline

_COMMANDS: dict[str, tuple[Callable[[Config], object], Optional[str]]] = {
    "run": (pipeline.run_pipeline, pipeline.__doc__),
    "index": (index.build_index, index.__doc__),
    "evaluate": (evaluate.evaluate, evaluate.__doc__),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="idistill", description="Distil a black-box LLM's rankings into a dense retriever, on Ray."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, doc) in _COMMANDS.items():
        summary = (doc or "").strip().splitlines()[0]
        p = sub.add_parser(name, help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_arguments(p)
    args = parser.parse_args(argv)
    fn = _COMMANDS[args.command][0]
    return run_guarded(lambda: fn(config_from_args(args)))


if __name__ == "__main__":
    sys.exit(main())
