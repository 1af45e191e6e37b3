"""A recipe's effect over seeds, with one confidence interval: reports of runs that differ only in
their seed, pooled per test question.

Each run's report carries a paired CI against its base, but a recipe is judged by what it does over
seeds, and three single-seed CIs do not say that. Where the runs share their base and their test
questions (the same base model, the same fixed test sample), the per-question difference averaged
over the seeds is the recipe's effect on that question; its mean and a bootstrap CI over questions
follow. Prints each retriever's Δ vs the base and each pair asked for with ``--pair``.

    python scripts/pool_seeds.py runs/x/*-seed0/report/report.json runs/x/*-seed1/report/report.json \
        --pair distilled "direct (no ranker)"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from components.errors import ConfigError
from components.metrics import paired_bootstrap


def seed_mean_differences(reports: list[dict], a: str, b: str, metric: str = "ndcg@10") -> np.ndarray:
    """Per test question, ``a``'s score minus ``b``'s, averaged over the reports (one per seed)."""
    per_seed = []
    for report in reports:
        scores = report["per_question"][metric]
        missing = [name for name in (a, b) if name not in scores]
        if missing:
            raise ConfigError(f"a report has no per-question {metric} for {', '.join(missing)}")
        per_seed.append(np.asarray(scores[a], dtype=np.float64) - np.asarray(scores[b], dtype=np.float64))
    if len({d.size for d in per_seed}) != 1:
        raise ConfigError("the reports score different numbers of test questions: they cannot be pooled by question")
    return np.mean(per_seed, axis=0)


def read_reports(paths: list[str], metric: str) -> list[dict]:
    """The reports, each checked to hold per-question ``metric`` scores."""
    reports = []
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"no such report: {path}")
        report = json.loads(Path(path).read_text())
        if metric not in report.get("per_question", {}):
            raise ConfigError(f"{path} holds no per-question {metric}")
        reports.append(report)
    return reports


def pool(paths: list[str], pairs: list[tuple[str, str]], metric: str) -> None:
    reports = read_reports(paths, metric)
    bases = {r["base"] for r in reports}
    if len(bases) != 1:
        raise ConfigError(f"the runs have different bases ({', '.join(sorted(bases))}): not one recipe over seeds")
    base = bases.pop()
    if len({json.dumps(r["per_question"][metric][base]) for r in reports}) != 1:
        raise ConfigError("the base scores differently across the runs: their test questions are not the same")
    names = [n for n in reports[0]["per_question"][metric] if n != base]
    print(f"{len(reports)} seeds, {len(reports[0]['per_question'][metric][base])} test questions, {metric}, "
          f"per-question differences averaged over seeds, bootstrap 95% CI over questions")
    for a, b in [(n, base) for n in names] + pairs:
        ci = paired_bootstrap(seed_mean_differences(reports, a, b, metric))
        print(f"  {a} − {b}: {ci['delta']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="report.json of each seed's run")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"), help="also print A − B")
    parser.add_argument("--metric", default="ndcg@10")
    args = parser.parse_args()
    try:
        pool(args.reports, [(a, b) for a, b in args.pair], args.metric)
    except ConfigError as e:  # bad input: one line, not a traceback
        raise SystemExit(f"pool_seeds: error: {e}")


if __name__ == "__main__":
    main()
