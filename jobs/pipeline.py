"""The main job: every stage of a run in order, each skipped when its outputs are up to date.

Today: base index → evaluation report (BM25 vs. the base dense retriever). ``RUN/manifest.json``
records the config, package versions and each stage's status and outputs.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, Sequence

from components import storage
from components.config import Config
from components.corpus import load_collection
from components.versions import versions
from jobs.common import job_main
from jobs.evaluate import evaluate
from jobs.index import build_index


def _write_manifest(cfg: Config, stages: dict[str, Any]) -> None:
    storage.write_json(
        storage.join(cfg.run_dir, "manifest.json"),
        {"config": cfg.model_dump(mode="json"), "versions": versions(), "stages": stages},
    )


def run_pipeline(cfg: Config) -> str:
    """Run all stages; return the path of the report."""
    collection = load_collection(cfg.data.path, cfg.data.on_invalid)
    if collection.validation.counts:
        print(f"data: dropped on load: {collection.validation.describe()}")
    stages: dict[str, Any] = {}
    for name, step in (
        ("index", lambda: build_index(cfg, collection.corpus)),
        ("evaluate", lambda: evaluate(cfg, collection)),
    ):
        started = time.time()
        stages[name] = {"status": "running"}
        _write_manifest(cfg, stages)
        output = step()
        stages[name] = {"status": "done", "output": output, "seconds": round(time.time() - started, 1)}
        _write_manifest(cfg, stages)
    return stages["evaluate"]["output"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    return job_main(__doc__, run_pipeline, argv)


if __name__ == "__main__":
    sys.exit(main())
