"""Export a finished run for use without idistill: the distilled retriever as a sentence-transformers
model and the ranker as a CrossEncoder (each with a model card: base model, teacher and its label
statistics, training data and sizes, the test metrics with Δ vs base, how to load it), and the
paid labels as a Hugging Face dataset (parquet) with a dataset card of their provenance. Only the
run's current models are exported; ``--push-to-hub REPO`` also pushes them (REPO, REPO-ranker,
REPO-labels) with the libraries' own push.

    idistill export --run-dir runs/nfcorpus --out exported/
    python -c "from sentence_transformers import SentenceTransformer; SentenceTransformer('exported/retriever')"
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from components.run import Run, run_config
from components.stages.export import export
from jobs.common import add_config_arguments, run_guarded


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="where to write retriever/, ranker/ and labels/ (local or s3://)")
    parser.add_argument("--push-to-hub", metavar="REPO", help="also push to the Hugging Face Hub (needs HF_TOKEN and network)")
    args = parser.parse_args(argv)
    if not args.run_dir:
        parser.error("--run-dir is required: the finished run to export")
    # The run's recorded config (what its models were trained with), --config/--set on top.
    cfg = lambda: run_config(args.run_dir, args.config, args.overrides)  # noqa: E731
    return run_guarded(lambda: export(Run(cfg()), args.out, args.push_to_hub))


if __name__ == "__main__":
    sys.exit(main())
