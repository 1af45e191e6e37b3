"""The labelling job on a local Ray cluster: faults, a SIGKILL mid-run, the real local LLM, vLLM's
config path. Marked ``slow``."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from components.run import Run
from components.config import load_config
from components.corpus import load_collection
from components.errors import ConfigError
from components.llm.backends import BATCHES_RUNNING_PER_ACTOR, vllm_processor_config, vllm_stage
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from components.stages.candidates import build_candidates
from components.stages.labels import label
from tests.conftest import dataset_subset

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
DEMO = load_collection("demo")


def _simulator(**settings) -> SimulatorServer:
    return SimulatorServer(TeacherSimulator(Oracle(DEMO, DEMO.split("train").qrels), SimSettings(**settings)))


def _labels(run_dir: Path) -> list[dict]:
    return pq.read_table(run_dir / "labels" / "labels.parquet").to_pylist()


def test_faulty_teacher_every_question_accounted_for(ray_cluster, tmp_path):
    with _simulator(error_rate=0.2, malformed_rate=0.1, latency_s=0.03, latency_jitter_s=0.03, seed=3) as sim:
        cfg = load_config(None, [
            f"run_dir={tmp_path}", f"labels.endpoints=[{{base_url: '{sim.base_url}', max_concurrency: 8}}]",
            "labels.max_attempts=6", "labels.backoff_s=0.02", "labels.actors=2", "labels.batch_size=4",
        ])
        label(Run(cfg))
        rows = _labels(tmp_path)
        summary = json.loads((tmp_path / "labels" / "summary.json").read_text())
        stats = dict(sim.sim.stats)
        assert len(rows) == summary["questions"] == len(DEMO.split("train").questions)
        assert sum(summary[s] for s in ("complete", "repaired", "unusable", "failed")) == len(rows)
        assert stats["answered"] == summary["calls_sent"] - summary["failed_calls"]  # each answer paid once
        assert sum(v for k, v in stats.items() if k.startswith("injected_")) > 0
        # Malformed replies become unusable labels (kept, flagged), not crashes or silent drops.
        assert summary["unusable"] == stats.get("malformed", 0)
        assert all(r["error"] for r in rows if r["status"] == "failed")
        assert summary["teacher"] == "teacher-sim[noise=0]"
        label(Run(cfg))  # rerun: only the failed calls are sent again, and no prompt is answered twice
        again = json.loads((tmp_path / "labels" / "summary.json").read_text())
        assert again["calls_sent"] == summary["failed_calls"]
        # A call that failed before may be answered now (the simulator's faults are random per attempt).
        assert sim.sim.stats["answered"] - stats["answered"] == again["calls_sent"] - again["failed_calls"]
        assert max(sim.sim.answered_per_prompt.values()) == 1


def test_sigkill_mid_run_then_resume_loses_nothing_and_repays_only_in_flight(ray_cluster, tmp_path):
    overrides = ["--set", "labels.actors=2", "--set", "labels.batch_size=2", "--set", "ray.num_cpus=2"]
    build_candidates(Run(load_config(None, [f"run_dir={tmp_path}"])))  # embed once, outside the killed job
    calls_dir = tmp_path / "labels" / "calls"
    with _simulator(latency_s=0.25) as sim:
        cmd = [sys.executable, "-m", "jobs.label", "--run-dir", str(tmp_path), "--llm-url", sim.base_url, *overrides]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(list(calls_dir.glob("*.parquet"))) < 3:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, mid-run
        proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # then whatever Ray left behind in its session
        except ProcessLookupError:
            pass
        stored = {r["prompt_hash"] for f in calls_dir.glob("*.parquet") for r in pq.read_table(f).to_pylist()}
        total = len(DEMO.split("train").questions)
        assert 0 < len(stored) < total, "the kill should land mid-run"

        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        per_prompt = sim.sim.answered_per_prompt
        rows = _labels(tmp_path)
    assert len(rows) == total and all(r["status"] == "complete" for r in rows)
    assert all(per_prompt[h] == 1 for h in stored)  # stored before the kill: never paid again
    repaid = sum(c - 1 for c in per_prompt.values())
    assert repaid <= 2 * BATCHES_RUNNING_PER_ACTOR * 2  # only what was on the wire: actors x batches x batch size
    assert len(per_prompt) == total


def test_local_llama_cpp_teacher_end_to_end(ray_cluster, tmp_path, capsys):
    """Real model, real HTTP, real data: SQuAD paragraphs and questions labelled by SmolLM2."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python[server] is installed by `make test`")
    data = dataset_subset("squad-v1.1-dev", tmp_path / "squad-150", 150)
    cfg = load_config(None, [
        f"run_dir={tmp_path / 'run'}", f"data.path={data}", "labels.max_questions=3", "labels.num_candidates=5",
        "labels.max_words_per_passage=40",
    ])
    label(Run(cfg))
    out = capsys.readouterr().out
    assert "llm: local llama.cpp server with SmolLM2-135M-Instruct" in out
    rows = _labels(tmp_path / "run")
    assert len(rows) == 3
    assert all(r["status"] in {"complete", "repaired", "unusable"} and r["raw"].strip() for r in rows)
    assert all(r["tokens_in"] > 0 and r["tokens_out"] > 0 and r["model"].startswith("smollm2") for r in rows)
    assert all(sorted(r["permutation"]) == list(range(5)) for r in rows)
    label(Run(cfg))  # everything cached: the server is not even started
    out = capsys.readouterr().out
    assert "llm: local llama.cpp" not in out and "0 calls sent (3 cached)" in out


def test_vllm_backend_config_builds_without_vllm_and_refuses_a_cpu_cluster(ray_cluster):
    cfg = load_config(None, ["labels.backend=vllm", "labels.vllm.model=/models/qwen", "labels.vllm.tensor_parallel_size=2"])
    proc_cfg = vllm_processor_config(cfg.labels)
    assert proc_cfg.model_source == "/models/qwen"
    assert proc_cfg.engine_kwargs["tensor_parallel_size"] == 2
    with pytest.raises(ConfigError, match="needs 2 GPU"):
        next(iter(vllm_stage([{"request_id": "r", "messages": "[]", "max_tokens": 8}], cfg.labels, print)))


CHAOS = dict(  # every failure an API throws at a client, at once
    latency_s=0.3, latency_jitter_s=0.3,  # 0-0.6 s against a 0.45 s client timeout: some calls time out
    error_rate=0.15,  # 500, 502, 503 and 429
    malformed_rate=0.1, truncate_rate=0.05,
    max_concurrency=3,  # 429 beyond three calls in flight
    retry_after="0.05 | inf | -1 | soon | 1e9 | Wed, 21 Oct 2015 07:28:00 GMT",
    seed=7,
)


def test_chaos_three_sigkills_every_question_accounted_for_and_no_stored_reply_paid_again(ray_cluster, tmp_path):
    """The driver is SIGKILLed at three random moments of a labelling run against an endpoint that
    mixes 429s with odd Retry-After values, 5xx, timeouts and malformed replies, and restarted
    each time; then the run finishes."""
    import random

    overrides = ["--set", "labels.actors=2", "--set", "labels.batch_size=2", "--set", "ray.num_cpus=2",
                 "--set", "labels.timeout_s=0.45", "--set", "labels.max_attempts=4", "--set", "labels.backoff_s=0.02",
                 "--set", "labels.max_retry_after_s=0.2", "--set", "labels.cooldown_s=0.2"]
    build_candidates(Run(load_config(None, [f"run_dir={tmp_path}"])))  # embed once, outside the killed jobs
    calls_dir = tmp_path / "labels" / "calls"
    rng = random.Random(0)
    paid_when_stored: dict[str, int] = {}  # prompt -> times answered when its reply was first seen stored
    with _simulator(**CHAOS) as sim:
        cmd = [sys.executable, "-m", "jobs.label", "--run-dir", str(tmp_path), "--llm-url", sim.base_url, *overrides]
        for kill in range(3):
            before = len(list(calls_dir.glob("*.parquet")))
            wait_for = before + rng.randint(2, 6)  # a random moment: after a few more replies are stored
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and proc.poll() is None and len(list(calls_dir.glob("*.parquet"))) < wait_for:
                time.sleep(0.02)
            assert proc.poll() is None, f"kill {kill + 1}: the run ended before it could be killed"
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
            proc.wait()
            stored = {r["prompt_hash"] for f in calls_dir.glob("*.parquet") for r in pq.read_table(f).to_pylist() if r["ok"]}
            for h in stored:
                paid_when_stored.setdefault(h, sim.sim.answered_per_prompt[h])
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        per_prompt = dict(sim.sim.answered_per_prompt)
    rows = _labels(tmp_path)
    summary = json.loads((tmp_path / "labels" / "summary.json").read_text())
    assert len(rows) == summary["questions"] == len(DEMO.split("train").questions)  # every question accounted for
    assert sum(summary[s] for s in ("complete", "repaired", "unusable", "failed")) == len(rows)
    assert all(r["error"] for r in rows if r["status"] == "failed")
    assert len(paid_when_stored) > 0
    # A reply once stored is never asked for again, by any of the restarts.
    assert all(per_prompt[h] == n for h, n in paid_when_stored.items())
    assert summary["timed_out_attempts"] > 0  # the chaos did include timeouts
