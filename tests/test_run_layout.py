"""Trained models are published under a new name and switched to by the stage's manifest."""

import json

from components import storage
from components.run_layout import TRAINED_DIR, put_model, stage_model, switch_model, trained_model


def _model(tmp_path, name: str, weights: str) -> str:
    d = tmp_path / "local" / name
    d.mkdir(parents=True)
    (d / "weights.bin").write_text(weights)
    return str(d)


def test_a_retrained_model_replaces_the_old_one_only_when_the_manifest_switches(tmp_path):
    stage = str(tmp_path / "run" / "retriever")
    first = switch_model(stage, {"lr": 1}, put_model(_model(tmp_path, "a", "old"), stage, {"lr": 1}), {"losses.jsonl": b"1\n"})
    assert stage_model(stage) == first and first.endswith("/model-" + storage.content_hash({"lr": 1})[:12])

    placed = put_model(_model(tmp_path, "b", "new"), stage, {"lr": 2})  # ... and the job is killed here
    assert placed != first
    assert stage_model(stage) == first  # readers still get the whole old model
    assert (tmp_path / "run" / "retriever" / first.rsplit("/", 1)[-1] / "weights.bin").read_text() == "old"

    assert switch_model(stage, {"lr": 2}, placed, {"losses.jsonl": b"2\n"}, questions=3) == placed
    assert stage_model(stage) == placed
    assert storage.list_dirs(stage, "model") == [placed]  # the replaced model is gone
    manifest = json.loads((tmp_path / "run" / "retriever" / "manifest.json").read_text())
    assert manifest["inputs"] == {"lr": 2} and manifest["questions"] == 3


def test_runs_from_before_the_switch_keep_their_model_directory(tmp_path):
    stage = tmp_path / "ranker"
    (stage / "model").mkdir(parents=True)
    storage.mark_stage_done(str(stage), {"lr": 1})
    assert stage_model(str(stage)) == str(stage / "model")


def test_a_derived_model_keeps_its_trained_end_point_until_a_retrain_replaces_both(tmp_path):
    stage = str(tmp_path / "retriever")
    end = put_model(_model(tmp_path, "a", "trained"), stage, {"lr": 1}, kind=TRAINED_DIR)
    kept = put_model(_model(tmp_path, "b", "averaged"), stage, {"lr": 1})
    switch_model(stage, {"lr": 1}, kept, {}, trained_uri=end)
    assert stage_model(stage) == kept and trained_model(stage) == end
    assert (tmp_path / "retriever" / end.rsplit("/", 1)[-1] / "weights.bin").read_text() == "trained"

    again = switch_model(stage, {"lr": 2}, put_model(_model(tmp_path, "c", "plain"), stage, {"lr": 2}), {})
    assert trained_model(stage) == stage_model(stage) == again  # nothing derived: the model is the end point
    assert storage.list_dirs(stage) == [again]  # the old end point went with the model it belonged to
