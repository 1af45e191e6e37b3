"""Corpus-only mode end to end: the teacher simulator writes the training questions for the demo
corpus, a resumed generation pays no call twice, and the pipeline distils from them."""

from __future__ import annotations

import json

import pytest

from components.run import Run
from components import storage
from components.config import load_config
from components.corpus import load_collection
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from components.stages.questions import generate_questions
from components.stages.pipeline import run_pipeline

pytestmark = pytest.mark.slow


def test_generation_resumes_without_paying_twice_and_the_pipeline_runs_from_the_corpus(ray_cluster, tmp_path):
    demo = load_collection("demo")
    sim = TeacherSimulator(Oracle(demo, demo.split("train").qrels), SimSettings())
    with SimulatorServer(sim) as server:
        cfg = load_config(overrides=[
            f"run_dir={tmp_path}", f'labels.endpoints=[{{base_url: "{server.base_url}"}}]', "data.questions=generated",
            "generate.count=24", "generate.per_passage=2", "generate.consistency_k=10",
            "labels.num_candidates=5", "train.ranker.epochs=1", "train.ranker.max_seq_length=64",
        ])
        table = storage.read_parquet(generate_questions(Run(cfg))).to_pylist()
        summary = storage.read_json(str(tmp_path / "questions" / "summary.json"))
        asked = sim.stats["answered"]
        assert 0 < len(table) <= 24 and summary["kept"] == len(table) and summary["calls_sent"] == asked
        assert summary["asked"] == 2 * summary["passages_sampled"]
        assert summary["passed_filters"] + sum(summary["dropped"].values()) == summary["asked"]
        assert "source_not_in_top_k" in summary["dropped"]  # the consistency filter ran (its count may be 0)
        assert all(r["source_id"] in set(demo.corpus.ids) and r["question"].startswith("what is known about") for r in table)

        # a job killed after its calls but before its manifest: the rerun recomputes from stored replies
        (tmp_path / "questions" / "manifest.json").unlink()
        again = storage.read_parquet(generate_questions(Run(cfg))).to_pylist()
        assert again == table and sim.stats["answered"] == asked
        assert storage.read_json(str(tmp_path / "questions" / "summary.json"))["calls_sent"] == 0

        report_path = run_pipeline(Run(cfg))
    report = json.loads(open(report_path).read())
    assert report["teacher"]["training_questions"] == "generated"
    assert report["teacher"]["generation"]["kept"] == len(table)
    assert report["teacher"]["questions"] == len(table)  # the labelled questions are the generated ones
    assert {"bm25", "base-minilm", "distilled"} <= set(report["retrievers"])
    assert report["dataset"]["split"] == "test"  # evaluated on the real held-out questions
