"""Compare runs: the first run's base and distilled retrievers and every other run's distilled one,
on the first run's test questions, with each one's paired difference from the base (bootstrap 95%
CI). Prints the table; ``--out FILE`` also writes it as JSON. Nothing is written into any run.

    idistill compare runs/nfcorpus-a runs/nfcorpus-b [--set data.max_test_questions=500]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from components.stages.compare import compare_runs, comparison_markdown
from jobs.common import run_guarded


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (local or s3://); the first one's test split is used")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override the first run's recorded config, e.g. --set data.max_test_questions=500")
    parser.add_argument("--out", metavar="FILE", help="also write the comparison as JSON")
    args = parser.parse_args(argv)

    def compare() -> None:
        comparison = compare_runs(args.runs, args.overrides)
        print(comparison_markdown(comparison))
        if args.out:
            Path(args.out).write_text(json.dumps(comparison, indent=2))
            print(f"compare: {args.out}")

    return run_guarded(compare)


if __name__ == "__main__":
    sys.exit(main())
