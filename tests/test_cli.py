"""The entry points as a user (or ``ray job submit``) runs them: real subprocesses."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


STAGES = ["index", "candidates", "label", "train_ranker", "train_retriever", "evaluate", "pipeline"]


@pytest.mark.parametrize("module", STAGES)
def test_every_stage_has_help_with_the_shared_options(module):
    out = _run("-m", f"jobs.{module}", "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout and "--config FILE" in out.stdout and "--set KEY=VALUE" in out.stdout and "--verbose" in out.stdout


def test_cli_lists_every_command_and_dispatches_to_the_same_job():
    from jobs.cli import COMMANDS

    out = _run("-m", "jobs.cli", "--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in out.stdout
    assert set(STAGES) <= set(COMMANDS.values())
    same = _run("-m", "jobs.cli", "label", "--help")
    assert same.stdout.startswith("usage: idistill label")
    assert same.stdout.split("\n\n", 1)[1] == _run("-m", "jobs.label", "--help").stdout.split("\n\n", 1)[1]
    assert "--llm-url URL" in same.stdout
    sim = _run("-m", "jobs.cli", "teacher-sim", "--help")
    assert "--error-rate" in sim.stdout and "--noise" in sim.stdout
    unknown = _run("-m", "jobs.cli", "distil")
    assert unknown.returncode == 2 and "unknown command 'distil'" in unknown.stderr


def test_config_error_is_one_clear_line_not_a_traceback(tmp_path):
    out = _run("-m", "jobs.cli", "run", "--run-dir", str(tmp_path), "--set", "index.kind=annoy")
    assert out.returncode == 2
    assert "idistill: error: invalid configuration" in out.stderr
    assert "index.kind" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_dataset_is_a_clear_error(tmp_path):
    out = _run("-m", "jobs.evaluate", "--run-dir", str(tmp_path), "--set", f"data.path={tmp_path / 'nope'}")
    assert out.returncode == 2
    assert "neither corpus.jsonl nor corpus.parquet" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_stage_on_a_run_starts_from_the_config_the_run_recorded(tmp_path):
    """A stage rerun (or a resumed run) reads what the run was started with; --config replaces it."""
    import json

    from components.config import Config

    run = tmp_path / "run"
    recorded = Config().model_dump(mode="json")
    recorded["data"]["path"] = str(tmp_path / "recorded-data")
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"config": recorded, "stages": {}}))
    out = _run("-m", "jobs.evaluate", "--run-dir", str(run))
    assert out.returncode == 2 and "recorded-data" in out.stderr and "Traceback" not in out.stderr
    assert "the run's recorded config" in out.stdout + out.stderr
    config = tmp_path / "other.yaml"
    config.write_text(f"data:\n  path: {tmp_path / 'other-data'}\n")
    out = _run("-m", "jobs.evaluate", "--run-dir", str(run), "--config", str(config))
    assert out.returncode == 2 and "other-data" in out.stderr and "recorded-data" not in out.stderr
