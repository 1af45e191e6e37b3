"""Every benchmark runs at its ``--smoke`` size, so a benchmark that drifts from the code fails CI.
The figures themselves are not checked here: speed and quality targets live in the benchmarks."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))
# What each benchmark prints when it got to its figures.
PRINTS = {"distill_quality.py": "| distilled |", "embed_index.py": "ratio Ray / plain", "label_fanout.py": "ratio sustained / max",
          "serve_load.py": "ratio (Serve / plain)", "train_throughput.py": "Stage 2 KL, both sides trained: ours",
          "index_scale.py": "ivfpq against its targets"}


def test_every_benchmark_is_covered():
    assert set(BENCHMARKS) == set(PRINTS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_its_smoke_size(name, tmp_path):
    extra = ["--out", str(tmp_path)] if name == "distill_quality.py" else []
    extra += ["--run-dir", str(tmp_path / "serve")] if name == "serve_load.py" else []
    proc = subprocess.run([sys.executable, f"benchmarks/{name}", "--smoke", *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert PRINTS[name] in proc.stdout, proc.stdout[-3000:]
