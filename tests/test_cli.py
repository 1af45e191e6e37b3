"""The entry points as a user (or ``ray job submit``) runs them: real subprocesses."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["jobs.index", "jobs.evaluate", "jobs.pipeline", "jobs.cli"])
def test_every_job_has_help(module):
    out = _run("-m", module, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
    if module != "jobs.cli":
        assert "--config FILE" in out.stdout and "--set KEY=VALUE" in out.stdout


def test_cli_lists_subcommands():
    out = _run("-m", "jobs.cli", "--help")
    for command in ("run", "index", "evaluate"):
        assert command in out.stdout


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
