"""Cluster operation on real parts: a job submitted with `ray job submit` to a Ray head started
here, a job on an autoscaling cluster (Ray's fake multi-node provider) that grows and shrinks its
CPU group, and a whole pipeline run whose every artifact lives on a real S3-compatible server
(moto) on 127.0.0.1, then resumed from there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from components import storage
from components.corpus import load_collection
from components.run_layout import stage_model
from components.llm.teacher_sim import (
    Oracle,
    SimSettings,
    SimulatorServer,
    TeacherSimulator,
)
from tests.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "disabled", **extra}


def _stop_cluster(temp_dir: str) -> None:
    """Stop only the cluster started here (`ray stop` would also stop the test session's): the
    processes naming its temp dir, and their descendants (Ray renames its actors' processes)."""
    parent: dict[int, int] = {}
    named: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if temp_dir.encode() in (proc / "cmdline").read_bytes():
                named.add(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    pids = set(named)
    grew = True
    while grew:
        children = {pid for pid, ppid in parent.items() if ppid in pids} - pids
        pids |= children
        grew = bool(children)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(3)


@pytest.fixture()
def ray_head():
    """`ray start --head` on 127.0.0.1 with its own ports and temp dir; yields the dashboard address."""
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    dashboard = free_port()
    cmd = [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}",
           f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1", "--include-dashboard=true",
           f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
           f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
           f"--ray-client-server-port={free_port()}", "--num-cpus=2", "--object-store-memory=200000000",
           f"--temp-dir={temp_dir}"]
    subprocess.run(cmd, env=_env(), check=True, capture_output=True, timeout=180)
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        _stop_cluster(temp_dir)


def test_ray_job_submit_runs_a_stage_on_a_running_cluster(ray_head, tmp_path):
    run_dir = tmp_path / "run"
    submit = [str(BIN / "ray"), "job", "submit", "--address", ray_head, "--working-dir", str(ROOT),
              "--runtime-env-json", json.dumps({"excludes": [".git"]}), "--",
              "python", "-m", "jobs.index", "--run-dir", str(run_dir), "--set", "ray.embed_actors=1",
              "--set", "ray.embed_in_driver_max=0"]  # the Ray Data path, on the cluster
    done = subprocess.run(submit, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout.lower() and "index: 265 passages" in done.stdout
    manifest = json.loads((run_dir / "index" / "base" / "manifest.json").read_text())
    assert manifest["num_docs"] == 265


def test_a_pipeline_run_on_s3_writes_every_artifact_there_and_resumes(s3_server, tmp_path):
    run = storage.join(s3_server, "runs", "demo")
    demo = load_collection("demo")
    oracle = Oracle(demo, demo.split("train").qrels)
    with SimulatorServer(TeacherSimulator(oracle, SimSettings())) as sim:
        cmd = [str(BIN / "idistill"), "run", "--run-dir", run, "--llm-url", sim.base_url,
               "--set", "labels.max_questions=12", "--set", "labels.num_candidates=5",
               "--set", "train.ranker.epochs=1", "--set", "train.ranker.max_seq_length=64",
               "--set", "ray.num_cpus=2", "--set", "ray.embed_actors=1", "--set", "ray.embed_in_driver_max=0",
               "--set", "train.keep_checkpoints=true"]
        first = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1800, cwd=tmp_path)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        for rel in ("manifest.json", "index/base/manifest.json", "index/base/faiss.index", "candidates/candidates.parquet",
                    "labels/labels.parquet", "ranker/manifest.json", "retriever/manifest.json", "report/report.json",
                    "report/topk.png"):
            assert storage.exists(storage.join(run, rel)), rel
        for stage in ("ranker", "retriever"):  # each model where its manifest says
            assert storage.exists(storage.join(stage_model(storage.join(run, stage)), "config.json")), stage
        assert storage.list_files(storage.join(run, "labels", "calls"), ".parquet")
        checkpoints = storage.join(run, "ranker", "checkpoints")
        assert storage.is_dir(checkpoints)  # Ray Train's storage_path was the s3:// run too (kept to show it)
        assert not any(tmp_path.iterdir())  # nothing was written locally instead
        report = storage.read_json(storage.join(run, "report", "report.json"))
        assert {"bm25", "base-minilm", "ranker-rerank@5", "distilled"} <= set(report["retrievers"])
        # The quiet console: stage lines, bars and the closing table; Ray's and the workers' lines in RUN/logs/.
        assert "[1/" in first.stdout and "Δ nDCG@10 vs base" in first.stdout and "report: " in first.stdout
        assert "ranker training" in first.stderr and "labels" in first.stderr
        assert "pid=" not in first.stdout + first.stderr
        assert "pid=" in storage.read_text(storage.join(run, "logs", "run_pipeline.log"))

        second = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    out = second.stdout
    assert "index: up to date" in out and "candidates: up to date" in out and "0 calls sent (12 cached)" in out
    assert "ranker: up to date" in out and "retriever: up to date" in out


def _active_workers(gcs: str) -> int:
    """Worker nodes the autoscaler reports active (``ray status``), the head not counted."""
    out = subprocess.run([str(BIN / "ray"), "status", f"--address={gcs}"], env=_env(), capture_output=True, text=True, timeout=60).stdout
    active = out.split("Active:", 1)[1].split("Pending:", 1)[0] if "Active:" in out else ""
    return sum(int(line.split()[0]) for line in active.splitlines() if line.strip()[:1].isdigit() and "cpu_worker" in line)


def test_an_autoscaling_cluster_grows_its_cpu_group_for_embedding_and_labelling_and_shrinks_when_idle(tmp_path):
    """Ray's fake multi-node autoscaler (the node provider behind ``ray.cluster_utils.AutoscalingCluster``,
    whose bundled example config this Ray wheel lacks, hence the config spelled out here) with
    ``ray_cluster.yaml``'s CPU worker group as logical nodes on this machine. The head has no CPUs,
    as on the cloud where the head only drives: the embedding and labelling actors can only run on
    workers the autoscaler starts. The GPU group is not simulated (its actors would need CUDA)."""
    group = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())["available_node_types"]["cpu_worker"]
    port = free_port()
    gcs = f"127.0.0.1:{port}"
    config = {
        "cluster_name": "idistill-fake", "max_workers": 2, "head_node_type": "ray.head.default",
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "cpu_worker": {"resources": {"CPU": 2, "object_store_memory": 150_000_000}, "node_config": {},
                           "min_workers": group["min_workers"], "max_workers": min(2, group["max_workers"])},
        },
        "upscaling_speed": 1.0, "idle_timeout_minutes": 0.1, "auth": {}, "docker": {}, "file_mounts": {},
        **{k: [] for k in ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                           "head_start_ray_commands", "worker_start_ray_commands", "cluster_synced_files",
                           "rsync_exclude", "rsync_filter")},
        "file_mounts_sync_continuously": False,
    }
    assert group["min_workers"] == 0  # the group starts empty, as in the cloud config
    (tmp_path / "autoscaler.json").write_text(json.dumps(config))
    temp_dir = tempfile.mkdtemp(prefix="ra", dir="/tmp")
    env = _env(AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_FAKE_CLUSTER="1")
    subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    f"--autoscaling-config={tmp_path / 'autoscaler.json'}", "--num-cpus=0", "--include-dashboard=false",
                    "--object-store-memory=150000000", f"--temp-dir={temp_dir}"], env=env, check=True, capture_output=True, timeout=180)
    try:
        assert _active_workers(gcs) == 0
        demo = load_collection("demo")
        with SimulatorServer(TeacherSimulator(Oracle(demo, demo.split("train").qrels), SimSettings(latency_s=0.05))) as sim:
            cmd = [sys.executable, "-m", "jobs.label", "--run-dir", str(tmp_path / "run"), "--llm-url", sim.base_url,
                   "--set", f"ray.address={gcs}", "--set", "ray.embed_in_driver_max=0", "--set", "ray.embed_actors=1",
                   "--set", "labels.actors=1", "--set", "labels.max_questions=16", "--set", "labels.num_candidates=5"]
            job = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            most = 0
            while job.poll() is None:
                most = max(most, _active_workers(gcs))
                time.sleep(1)
            log = job.stdout.read()
        assert job.returncode == 0, log[-3000:]
        assert "labels: 16 questions" in log
        assert most >= 1, "the autoscaler should have started a CPU worker for the job's actors"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and _active_workers(gcs):
            time.sleep(2)
        assert _active_workers(gcs) == 0, "idle workers should be scaled back down"
    finally:
        _stop_cluster(temp_dir)
