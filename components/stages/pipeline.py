"""Every stage of a run in order, each skipped when its outputs are up to date.

index → [questions written by the teacher, in corpus-only mode] → candidates → labels (teacher LLM)
→ Stage 1 ranker → Stage 2 retriever → [ablations without the ranker] → evaluation report.
When the teacher yields no usable label (a tiny local model can), the training stages are skipped
with the reason recorded and the report still compares what exists. ``RUN/manifest.json``
records the config, package versions and each stage's status and outputs.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from components import console, storage
from components.config import Config
from components.labelling import NoUsableLabels
from components.run import Run
from components.stages.candidates import build_candidates
from components.stages.evaluation import evaluate
from components.stages.index import build_index
from components.stages.labels import label
from components.stages.questions import generate_questions
from components.stages.ranker import train_ranker
from components.stages.retriever import train_ablation, train_retriever
from components.versions import versions


def write_manifest(cfg: Config, stages: dict[str, Any]) -> None:
    """``RUN/manifest.json``: the config, package versions and each stage's status."""
    storage.write_json(
        storage.join(cfg.run_dir, "manifest.json"),
        {"config": cfg.public_dump(), "versions": versions(), "stages": stages},
    )


def run_pipeline(run: Run) -> str:
    """Run all stages; return the path of the report."""
    cfg, collection = run.cfg, run.collection
    if collection.validation.counts:
        console.say(f"data: dropped on load: {collection.validation.describe()}")
    stages: dict[str, Any] = {}
    blocked = ""
    steps = [("index", functools.partial(build_index, run))]
    if cfg.data.questions == "generated":
        steps.append(("questions", functools.partial(generate_questions, run)))
    steps += [
        ("candidates", functools.partial(build_candidates, run)),
        ("label", functools.partial(label, run)),
        ("ranker", functools.partial(train_ranker, run)),
        ("retriever", functools.partial(train_retriever, run)),
        *[(f"retriever-{a}", functools.partial(train_ablation, run, a)) for a in cfg.train.ablations],
        ("evaluate", functools.partial(evaluate, run)),
    ]
    for number, (name, step) in enumerate(steps, start=1):
        if blocked and name.startswith(("ranker", "retriever")):
            stages[name] = {"status": "skipped", "reason": blocked}
            continue
        console.say(f"[{number}/{len(steps)}] {name}")
        started = time.time()
        stages[name] = {"status": "running"}
        write_manifest(cfg, stages)
        try:
            output = step()
        except NoUsableLabels as e:
            blocked = str(e)
            stages[name] = {"status": "skipped", "reason": blocked}
            console.say(f"{name}: skipped: {blocked}")
            continue
        stages[name] = {"status": "done", "output": output, "seconds": round(time.time() - started, 1)}
        write_manifest(cfg, stages)
    return stages["evaluate"]["output"]
