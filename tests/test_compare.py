"""``idistill compare``: several runs' retrievers on the first run's test questions, with paired
differences from its base; real indexes of the demo collection on a local Ray cluster."""

import json

import pytest

from components import encoders
from components.config import load_config
from components.corpus import load_collection
from components.run import Run
from components.run_layout import MODEL_DIR
from components.stages.index import build_index
from components.stages.pipeline import write_manifest
from jobs.compare import main
from tests.test_lineage import label_rows, record_ranker, record_retriever, write_labels

pytestmark = pytest.mark.slow
DEMO = load_collection("demo")


def _finished_run(run_dir) -> None:
    """A run whose distilled query encoder is the base encoder itself: its Δ must be exactly 0."""
    run = Run(load_config(None, [f"run_dir={run_dir}"]), DEMO)
    build_index(run)
    write_labels(run, label_rows())
    record_ranker(run)
    encoders.load_encoder(run.cfg.encoder).save(str(run_dir / "retriever" / MODEL_DIR))
    record_retriever(run)
    write_manifest(run.cfg, {})  # the recorded config compare starts from


def test_compare_scores_each_runs_distilled_retriever_against_the_first_runs_base(ray_cluster, tmp_path, capsys):
    for name in ("a", "b"):
        _finished_run(tmp_path / name)
    out = tmp_path / "compare.json"
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"), "--out", str(out)]) == 0
    comparison = json.loads(out.read_text())
    assert list(comparison["retrievers"]) == ["base-minilm", "distilled (a)", "distilled (b)"]
    for name in ("distilled (a)", "distilled (b)"):
        same = comparison["retrievers"][name]["vs_base"]["ndcg@10"]
        assert same["delta"] == 0 and same["ci_low"] == same["ci_high"] == 0
    assert comparison["skipped"] == {"distilled (c)": f"not trained: no model at {tmp_path / 'c' / 'retriever'}"}
    printed = capsys.readouterr().out
    assert "| distilled (b) |" in printed and "Not compared: distilled (c)" in printed


def test_compare_needs_two_runs(capsys):
    assert main(["runs/only-one"]) == 2
    assert "compare needs two run directories or more" in capsys.readouterr().err
