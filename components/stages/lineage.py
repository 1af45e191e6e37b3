"""Is a trained model still this run's? Evaluation, RAG evaluation and serving use a model only
when what its manifest records it was trained from equals what the run would train it from now.

A model directory outlives the inputs it came from: rerun a run directory with another teacher,
other labels or other settings, and the old ranker and query encoder are still on disk. A stage
that is skipped (no usable labels) or not rerun leaves them there, so "has a manifest" is not
"is current". Each check here is cheap (manifests, the labels table, the config; no model and no
LLM call) and answers with the reason a model is not used, which the report prints in its place.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from components import storage
from components.distill.lists import direct_lists, supervised_lists
from components.index import MANIFEST_FILE
from components.labelling import NoUsableLabels
from components.run import Run
from components.run_layout import ablation_uri, base_index_uri, candidates_uri, labels_uri, ranker_uri, retriever_uri
from components.stages.ranker import ranker_inputs
from components.stages.dev import gold_positives


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _changed(recorded: dict[str, Any], expected: dict[str, Any], section: str) -> list[str]:
    """``setting old → new`` for each expected input the record differs on; ``train`` is the
    config's ``section``, named setting by setting."""
    out = []
    for key, want in _json(expected).items():
        have = recorded.get(key)
        if have == want:
            continue
        if key == "train" and isinstance(have, dict):
            # only the settings the model reads: one recorded but no longer an input is no difference
            out += [f"{section}.{k} {have.get(k)!r} → {want[k]!r}" for k in sorted(want) if have.get(k) != want[k]]
        else:
            out.append(key if isinstance(want, (dict, list)) or len(str(want)) > 40 else f"{key} {have!r} → {want!r}")
    return out


def _not_trained(run: Run, stage_name: str, what: str) -> str:
    """Why a stage has no model: the reason the pipeline recorded when it skipped it, if any."""
    manifest = storage.join(run.cfg.run_dir, "manifest.json")
    stage = storage.read_json(manifest).get("stages", {}).get(stage_name, {}) if storage.exists(manifest) else {}
    return f"no {what} in this run" + (f": {stage['reason']}" if stage.get("status") == "skipped" else "")


def _labels(run: Run) -> Optional[list[dict[str, Any]]]:
    uri = storage.join(labels_uri(run.cfg), "labels.parquet")
    return storage.read_parquet(uri).to_pylist() if storage.exists(uri) else None


def _recorded(uri: str) -> Optional[dict[str, Any]]:
    manifest = storage.join(uri, "manifest.json")
    return storage.read_json(manifest).get("inputs", {}) if storage.exists(manifest) else None


def ranker_problem(run: Run) -> Optional[str]:
    """None when the run's ranker was trained from its current labels and ``train.ranker``; else why not."""
    recorded = _recorded(ranker_uri(run.cfg))
    if recorded is None:
        return _not_trained(run, "ranker", "trained ranker")
    labels = _labels(run)
    if labels is None:
        return "out of date: the run has no labels now"
    try:
        expected, _, _ = ranker_inputs(run, labels)
    except NoUsableLabels as e:
        return f"out of date: the labels it was trained on are gone ({e})"
    if recorded.get("labels") != expected["labels"]:
        return "out of date: trained on other labels than the run's current ones; rerun the ranker stage"
    changed = _changed(recorded, expected, "train.ranker")
    return f"out of date: trained with other settings ({'; '.join(changed)}); rerun the ranker stage" if changed else None


def query_encoder_problem(run: Run, stage_name: str) -> Optional[str]:
    """None when ``RUN/<stage_name>`` (the distilled retriever or an ablation) was trained from what
    the run holds now: the same settings, base index and teacher (the current ranker, labels or
    candidates); else why not."""
    cfg = run.cfg
    uri = retriever_uri(cfg) if stage_name == "retriever" else ablation_uri(cfg, stage_name.removeprefix("retriever-"))
    recorded = _recorded(uri)
    if recorded is None:
        return _not_trained(run, stage_name, "distilled retriever" if stage_name == "retriever" else f"trained {stage_name}")
    index = storage.join(base_index_uri(cfg), MANIFEST_FILE)
    expected = {"encoder": cfg.encoder.model, "train": cfg.train.retriever.inputs(ranker=stage_name == "retriever"), "workers": cfg.train.num_workers,
                "seed": cfg.seed, "index": storage.read_json(index)["files"] if storage.exists(index) else None}
    changed = _changed(recorded, expected, "train.retriever")
    if changed:
        return f"out of date: trained with other settings ({'; '.join(changed)}); rerun the {stage_name} stage"
    teacher = recorded.get("ranker")
    if stage_name == "retriever":
        problem = ranker_problem(run)
        if problem:
            return f"out of date: its ranker is not current ({problem})" if problem.startswith("out of date") else problem
        if not isinstance(teacher, dict) or teacher.get("ranker_stage") != storage.stage_digest(ranker_uri(cfg)):
            return "out of date: trained from another ranker than the run's current one; rerun the retriever stage"
        return None
    if stage_name == "retriever-direct":
        labels = _labels(run)
        lists = direct_lists(labels, cfg.train.retriever.dev_top_k) if labels is not None else None
    else:
        table = storage.join(candidates_uri(cfg), "candidates.parquet")
        lists = supervised_lists(storage.read_parquet(table).to_pydict(), gold_positives(run)) if storage.exists(table) else None
    if lists is None or lists.teacher_inputs != teacher:
        return f"out of date: trained on other lists than the run's current ones; rerun the {stage_name} stage"
    return None
