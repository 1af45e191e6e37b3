"""``idistill``: one command, a subcommand per job. ``idistill X ARGS`` is exactly
``python -m jobs.X ARGS`` (what ``ray job submit`` runs), so both take the same arguments."""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

# subcommand → module under jobs/
COMMANDS = {
    "run": "pipeline",
    "index": "index",
    "generate-questions": "generate_questions",
    "candidates": "candidates",
    "label": "label",
    "train-ranker": "train_ranker",
    "train-retriever": "train_retriever",
    "evaluate": "evaluate",
    "rag-eval": "rag_eval",
    "compare": "compare",
    "export": "export",
    "serve": "serve",
    "teacher-sim": "teacher_sim",
}


def _usage() -> str:
    lines = ["usage: idistill COMMAND [--config FILE] [--run-dir DIR] [--set KEY=VALUE ...]", "",
             "Distil a black-box LLM's rankings into a dense retriever, on Ray.", "", "commands:"]
    for name, module in COMMANDS.items():
        doc = importlib.import_module(f"jobs.{module}").__doc__ or ""
        lines.append(f"  {name:<16} {doc.strip().splitlines()[0]}")
    lines += ["", "`idistill COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"idistill: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return importlib.import_module(f"jobs.{COMMANDS[command]}").main(rest, prog=f"idistill {command}")


if __name__ == "__main__":
    sys.exit(main())
