"""Bounded load on ``POST /retrieve``: the Ray Serve RAG app vs. a plain FastAPI + FAISS server
over the same index and encoder, in the same run. Prints p50/p99 latency, QPS, the ratio, and the
count of 5xx (which must be zero).

    python benchmarks/serve_load.py [--data ../shared/datasets/squad-v1.1-dev] [--clients 8] [--requests 400]

Each server is warmed with a few requests, then ``--clients`` threads send ``--requests`` requests
in total (real test questions, k=10), one at a time each, over keep-alive HTTP on 127.0.0.1. The
plain server is uvicorn with one FastAPI route that encodes the question and searches FAISS; the
Serve app is ``idistill serve`` with the shipped ``serve/serve_config.yaml`` (requests batched).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "squad-v1.1-dev"


class Query(BaseModel):
    question: str
    k: int = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_server(run_dir: str, port: int) -> None:
    """The baseline: what one would write without Serve."""
    import uvicorn
    from fastapi import FastAPI

    from components import run_models
    from components.corpus import load_corpus
    from components.run import run_config

    cfg = run_config(run_dir)
    corpus = load_corpus(cfg.data.path)
    texts = dict(zip(corpus.ids, corpus.passages()))
    retriever = run_models.load_base(cfg, corpus)
    app = FastAPI()

    @app.post("/retrieve")
    def retrieve(q: Query) -> dict[str, Any]:
        hits = retriever.search([q.question], q.k)
        return {"question": q.question, "retriever": retriever.name,
                "passages": [{"id": d, "score": s, "text": texts[d]} for d, s in zip(hits.ids[0], hits.scores[0])]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            post(url, {"question": "warm-up", "k": 1})
            return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} did not come up within {timeout:g} s")


def post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def load(url: str, questions: list[str], clients: int, total: int) -> dict[str, float]:
    for q in questions[:10]:
        post(url, {"question": q, "k": 10})
    latencies: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            start = time.perf_counter()
            status = post(url, {"question": questions[i % len(questions)], "k": 10})
            with lock:
                latencies.append(time.perf_counter() - start)
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "qps": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "errors_5xx": sum(s >= 500 for s in statuses),
        "non_200": sum(s != 200 for s in statuses),
    }


def check(name: str, result: dict[str, float]) -> None:
    if result["non_200"]:
        raise SystemExit(f"{name}: {result['non_200']} responses were not 200; the figures would be meaningless")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else "demo")
    parser.add_argument("--run-dir", default=os.path.join(tempfile.gettempdir(), "idistill-bench-serve"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--plain-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the demo collection, 2 clients x 20 requests): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update({"data": "demo", "clients": 2, "requests": 20})
    if args.plain_server:
        return plain_server(args.run_dir, args.plain_server)

    from ray import serve

    from components.config import load_config
    from components.run import Run
    from components.stages.index import build_index
    from components.stages.pipeline import write_manifest
    from components.run import run_config
    from serve.app import start

    cfg = load_config(overrides=[f"run_dir={args.run_dir}", f"data.path={args.data}"])
    run = Run(cfg)
    build_index(run)
    write_manifest(cfg, {"index": {"status": "done"}})  # so both servers read this run's config
    collection = run.collection
    questions = collection.split(cfg.data.test_split).questions.texts
    print(f"data: {args.data} ({len(collection.corpus)} passages, {len(questions)} test questions); "
          f"{args.clients} clients, {args.requests} requests, k=10")

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--run-dir", args.run_dir, "--plain-server", str(port)])
    try:
        url = f"http://127.0.0.1:{port}/retrieve"
        wait_ready(url)
        plain = load(url, questions, args.clients, args.requests)
        check("plain server", plain)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)

    # No generator calls on /retrieve: point it at a closed port instead of starting llama.cpp.
    serve_cfg = run_config(args.run_dir, overrides=[f"serve.port={free_port()}",
                                                    f'generator.endpoints=[{{base_url: "http://127.0.0.1:{free_port()}/v1", model: m}}]'])
    base = start(serve_cfg)
    try:
        url = f"{base}/retrieve"
        wait_ready(url)
        served = load(url, questions, args.clients, args.requests)
    finally:
        serve.shutdown()

    print(f"{'server':<22}{'QPS':>8}{'p50 ms':>9}{'p99 ms':>9}{'5xx':>6}{'non-200':>9}")
    for name, r in (("plain FastAPI + FAISS", plain), ("Ray Serve app", served)):
        print(f"{name:<22}{r['qps']:>8.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['errors_5xx']:>6}{r['non_200']:>9}")
    print(f"ratio (Serve / plain): QPS {served['qps'] / plain['qps']:.2f}, p50 {served['p50_ms'] / plain['p50_ms']:.2f}")


if __name__ == "__main__":
    main()
