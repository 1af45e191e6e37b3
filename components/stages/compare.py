"""Compare runs: their retrievers on the first run's test questions, side by side, each with its
paired difference from the base retriever and a bootstrap CI (what ``eval.other_runs`` adds to one
run's report, as a command of its own that writes nothing into any run).

The runs must share the corpus (every query encoder searches the first run's base index, or its
own index when its passage side was trained); each run's recorded config is used, with
``overrides`` on top for the first. A run's model is compared only while it is that run's current
one (``lineage``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Sequence

from components.errors import ConfigError
from components.report import metric_tables
from components.run import Run, run_config
from components.stages.evaluation import score_retrievers


def run_names(run_dirs: Sequence[str]) -> list[str]:
    """A short, distinct name per run: its directory's last part, more of the path when two share it."""
    parts = [PurePosixPath(d.rstrip("/")).parts for d in run_dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    raise ConfigError(f"the same run is named twice: {list(run_dirs)}")


def compare_runs(run_dirs: Sequence[str], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Score the first run's base and distilled retrievers and every other run's distilled one
    on the first run's test questions; return the report-shaped comparison."""
    if len(run_dirs) < 2:
        raise ConfigError("compare needs two run directories or more")
    names = run_names(run_dirs)
    cfg = run_config(run_dirs[0], overrides=overrides)
    cfg = cfg.model_copy(update={
        "eval": cfg.eval.model_copy(update={"retrievers": ["base", "distilled"], "other_runs": dict(zip(names[1:], run_dirs[1:]))}),
        "train": cfg.train.model_copy(update={"ablations": []}),
    })
    scored, results, skipped = score_retrievers(Run(cfg))
    rename = {"distilled": f"distilled ({names[0]})"}
    return {**scored, "runs": dict(zip(names, run_dirs)),
            "retrievers": {rename.get(k, k): v for k, v in results.items()},
            "skipped": {rename.get(k, k): v for k, v in skipped.items()}}


def comparison_markdown(comparison: dict[str, Any]) -> str:
    data = comparison["dataset"]
    lines = [f"# idistill compare — {data['name']}", "",
             f"Split `{data['split']}` of {next(iter(comparison['runs'].values()))}'s data: "
             f"{data['questions']} questions over {data['documents']} documents. Top-k accuracy is "
             f"{comparison['accuracy_definition']}.", "", *metric_tables(comparison["retrievers"])]
    for name, why in comparison["skipped"].items():
        lines += ["", f"Not compared: {name} ({why})."]
    return "\n".join(lines) + "\n"
