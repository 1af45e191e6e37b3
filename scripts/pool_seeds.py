"""A recipe's effect over seeds, with one confidence interval: reports of runs that differ only in
their seed, pooled per test question.

Each run's report carries a paired CI against its base, but a recipe is judged by what it does over
seeds, and three single-seed CIs do not say that. Where the runs share their base and their test
questions (the same base model, the same fixed test sample), the per-question difference averaged
over the seeds is the recipe's effect on that question; its mean and a bootstrap CI over questions
follow. Prints each retriever's Δ vs the base and each pair asked for with ``--pair``.

    python scripts/pool_seeds.py runs/x/*-seed0/report/report.json runs/x/*-seed1/report/report.json \
        --pair distilled "direct (no ranker)"

``--against`` takes another recipe's reports of the same seeds, in the same order (the same base,
labels and test questions, another Stage 2 setting, say) and prints each retriever both have as
this recipe's minus the other's, question by question within each seed, then averaged as above.
``--reference REPORT NAME`` prints every retriever minus retriever NAME of another run's report on
the same test questions: the way to compare with a model that is not these runs' base (a hybrid
student's runs against a plain MiniLM run's ``base-minilm``, say).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from components.errors import ConfigError
from components.metrics import paired_bootstrap


def seed_mean_differences(reports: list[dict], a: str, b: str, metric: str = "ndcg@10",
                          against: Optional[list[dict]] = None) -> np.ndarray:
    """Per test question, ``a``'s score minus ``b``'s, averaged over the reports (one per seed);
    ``b``'s from ``against``'s report of the same seed when given."""
    per_seed = []
    for report, other in zip(reports, against or reports):
        mine, theirs = report["per_question"][metric], other["per_question"][metric]
        missing = [name for name, scores in ((a, mine), (b, theirs)) if name not in scores]
        if missing:
            raise ConfigError(f"a report has no per-question {metric} for {', '.join(missing)}")
        per_seed.append(np.asarray(mine[a], dtype=np.float64) - np.asarray(theirs[b], dtype=np.float64))
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


def pool(paths: list[str], pairs: list[tuple[str, str]], metric: str, against_paths: Sequence[str] = (),
         reference: Optional[tuple[str, str]] = None) -> None:
    reports, against = read_reports(paths, metric), read_reports(list(against_paths), metric)
    if against and len(against) != len(reports):
        raise ConfigError(f"{len(reports)} reports against {len(against)}: --against needs one report per seed, in the same order")
    bases = {r["base"] for r in reports + against}
    if len(bases) != 1:
        raise ConfigError(f"the runs have different bases ({', '.join(sorted(bases))}): not one recipe over seeds")
    base = bases.pop()
    if len({json.dumps(r["per_question"][metric][base]) for r in reports + against}) != 1:
        raise ConfigError("the base scores differently across the runs: their test questions are not the same")
    names = [n for n in reports[0]["per_question"][metric] if n != base]
    if reference:
        path, other = reference
        ref = read_reports([path], metric)[0]
        if other not in ref["per_question"][metric]:
            raise ConfigError(f"{path} has no per-question {metric} for {other}")
        if "bm25" in ref["per_question"][metric] and ref["per_question"][metric]["bm25"] != reports[0]["per_question"][metric].get("bm25"):
            raise ConfigError(f"{path} scores BM25 differently: its test questions are not these runs'")
    print(f"{len(reports)} seeds, {len(reports[0]['per_question'][metric][base])} test questions, {metric}, "
          f"per-question differences averaged over seeds, bootstrap 95% CI over questions")
    for a, b in [(n, base) for n in names] + pairs:
        _print(f"{a} − {b}", seed_mean_differences(reports, a, b, metric))
    for name in (n for n in names if against and n in against[0]["per_question"][metric]):
        _print(f"{name} − {name} (--against)", seed_mean_differences(reports, name, name, metric, against))
    if reference:
        for name in [base, *names]:
            _print(f"{name} − {reference[1]} of {reference[0]}", seed_mean_differences(reports, name, reference[1], metric, [ref] * len(reports)))


def _print(what: str, differences: np.ndarray) -> None:
    ci = paired_bootstrap(differences)
    print(f"  {what}: {ci['delta']:+.4f} [{ci['ci_low']:+.4f}, {ci['ci_high']:+.4f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="report.json of each seed's run")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"), help="also print A − B")
    parser.add_argument("--metric", default="ndcg@10",
                        help="ndcg@10, or top-k for each of eval.ks (reports hold per-question top-k since 2026-12-05)")
    parser.add_argument("--against", nargs="+", default=[], metavar="REPORT",
                        help="another recipe's report.json of the same seeds, in the same order: print this one's minus it")
    parser.add_argument("--reference", nargs=2, metavar=("REPORT", "NAME"),
                        help="also print each retriever minus retriever NAME of another run's report.json (the same test questions)")
    args = parser.parse_args()
    try:
        pool(args.reports, [(a, b) for a, b in args.pair], args.metric, args.against,
             tuple(args.reference) if args.reference else None)
    except ConfigError as e:  # bad input: one line, not a traceback
        raise SystemExit(f"pool_seeds: error: {e}")


if __name__ == "__main__":
    main()
