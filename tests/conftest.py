"""Shared fixtures: real files, a real local Ray cluster, the real packaged MiniLM model."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Iterable

import pytest

from components import storage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def shared_dataset(name: str) -> Path:
    path = SHARED / name
    if not (path / "corpus.jsonl").exists():
        pytest.skip(f"shared dataset {name!r} not found at {path} (the ../shared folder beside the checkout)")
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_beir(
    root: Path,
    docs: Iterable[dict[str, Any]],
    queries: Iterable[dict[str, Any]],
    qrels: dict[str, Iterable[tuple[str, str, int]]],
) -> Path:
    """Write a small BEIR-layout collection for a test."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        body = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body, encoding="utf-8")
    return root


def dataset_subset(name: str, dest: Path, documents: int) -> Path:
    """The first ``documents`` passages of a shared dataset with all its questions and qrels;
    judgements pointing outside the subset are dropped (and counted) on load."""
    src = shared_dataset(name)
    (dest / "qrels").mkdir(parents=True)
    lines = (src / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:documents]
    (dest / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for rel in ("queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"):
        (dest / rel).write_bytes((src / rel).read_bytes())
    return dest


@pytest.fixture(scope="session")
def ray_cluster():
    """One small local Ray cluster for every test that needs it (start-up is paid once)."""
    import ray

    ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2, loaded once."""
    from components import encoders
    from components.config import EncoderConfig

    return encoders.load_encoder(EncoderConfig())


@pytest.fixture()
def s3_server(monkeypatch):
    """A real S3-compatible server (moto) on 127.0.0.1 with one bucket; the AWS env points at it."""
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    storage.forget_s3_settings()
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1").create_bucket(Bucket="idistill")
    yield "s3://idistill"
    server.stop()
    storage.forget_s3_settings()
