"""The main job: every stage of a run in order, each skipped when its outputs are up to date.

index → [questions written by the teacher, in corpus-only mode] → candidates → labels (teacher LLM)
→ Stage 1 ranker → Stage 2 retriever → [ablations without the ranker] → evaluation report
comparing BM25, the base retriever, the ranker re-ranking the base top-n, and the distilled
retriever. When the teacher yields no usable label (a tiny local model can), the training stages
are skipped with the reason recorded and the report still compares what exists.
``RUN/manifest.json`` records the config, package versions and each stage's status and outputs.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any, Optional, Sequence

from components import storage
from components.config import Config
from components.corpus import load_collection
from components.versions import versions
from jobs.common import forget_stage_outputs, job_main
from jobs.evaluate import evaluate
from jobs.generate_questions import generate_questions
from jobs.candidates import build_candidates
from jobs.index import build_index
from jobs.label import label
from jobs.train_ranker import NoUsableLabels, train_ranker
from jobs.train_retriever import train_ablation, train_retriever


def _write_manifest(cfg: Config, stages: dict[str, Any]) -> None:
    storage.write_json(
        storage.join(cfg.run_dir, "manifest.json"),
        {"config": cfg.model_dump(mode="json"), "versions": versions(), "stages": stages},
    )


def run_pipeline(cfg: Config) -> str:
    """Run all stages; return the path of the report."""
    forget_stage_outputs()
    collection = load_collection(cfg.data.path, cfg.data.on_invalid)
    if collection.validation.counts:
        print(f"data: dropped on load: {collection.validation.describe()}")
    stages: dict[str, Any] = {}
    blocked = ""
    steps = [("index", lambda: build_index(cfg, collection.corpus))]
    if cfg.data.questions == "generated":
        steps.append(("questions", lambda: generate_questions(cfg, collection)))
    for name, step in steps + [
        ("candidates", lambda: build_candidates(cfg, collection)),
        ("label", lambda: label(cfg, collection)),
        ("ranker", lambda: train_ranker(cfg, collection)),
        ("retriever", lambda: train_retriever(cfg, collection)),
        *[(f"retriever-{a}", functools.partial(train_ablation, cfg, a, collection)) for a in cfg.train.ablations],
        ("evaluate", lambda: evaluate(cfg, collection)),
    ]:
        if blocked and name.startswith(("ranker", "retriever")):
            stages[name] = {"status": "skipped", "reason": blocked}
            continue
        started = time.time()
        stages[name] = {"status": "running"}
        _write_manifest(cfg, stages)
        try:
            output = step()
        except NoUsableLabels as e:
            blocked = str(e)
            stages[name] = {"status": "skipped", "reason": blocked}
            print(f"{name}: skipped: {blocked}")
            continue
        stages[name] = {"status": "done", "output": output, "seconds": round(time.time() - started, 1)}
        _write_manifest(cfg, stages)
    return stages["evaluate"]["output"]


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    return job_main(__doc__, run_pipeline, argv, llm_options=True, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
