"""FAISS at a million passages: flat (exact), HNSW and IVF-PQ over 1,000,000 384-d vectors, built
with the index code the pipeline uses (``components.index``), side by side in one run: memory,
build time, single-query latency (p50/p99) and recall@100 against flat, with the targets
(IVF-PQ ≤ 10% of flat's memory, recall@100 ≥ 0.95, p50 ≤ 2 ms).

    python benchmarks/index_scale.py [--vectors 1000000] [--queries 1000] [--kinds flat,hnsw,ivfpq]

The vectors are real: all-MiniLM-L6-v2 (max_seq_length 128) embeddings of every passage of the
shared corpora (NFCorpus, SQuAD dev, Cranfield: 7,098 passages), grown to a million by perturbing
them: each synthetic vector is ``normalize(a·x_i + (1 − a)·x_j + σ·g)`` with ``x_i`` a random real
passage, ``x_j`` one of its 20 nearest real passages, ``a ~ U(0.3, 1)``, ``g`` Gaussian and σ 0.35,
so the million stays on the real vectors' manifold and in their topic clusters instead of filling
the sphere evenly. Queries are the real questions of the same datasets, embedded by the same
model. Memory is the serialized index (what a replica holds). Latency is one query per call, as
the endpoint searches an unbatched request, with FAISS's threads (this machine: 2).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import faiss
import numpy as np

from components.config import IndexConfig
from components.index import FaissIndex

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = ("nfcorpus", "squad-v1.1-dev", "cranfield")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "idistill" / "index_scale"
TARGETS = {"memory": 0.10, "recall@100": 0.95, "p50_ms": 2.0}


def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """(passages, questions) of the shared corpora, embedded once and cached."""
    cached = CACHE / "minilm128.npz"
    if cached.exists():
        data = np.load(cached)
        return data["passages"], data["questions"]
    from components import encoders
    from components.config import EncoderConfig
    from components.corpus import load_collection

    cfg = EncoderConfig(max_seq_length=128, batch_size=64)
    model = encoders.load_encoder(cfg)
    passages, questions = [], []
    for name in DATASETS:
        col = load_collection(str(SHARED / name))
        passages += col.corpus.passages()
        questions += col.questions.texts
    p, q = encoders.encode(model, passages, cfg), encoders.encode(model, questions, cfg)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, passages=p, questions=q)
    return p, q


def grow(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` vectors: the real ones, then perturbed mixtures of each with a near neighbour (see above)."""
    rng = np.random.default_rng(seed)
    neighbours = np.argsort(-(real @ real.T), axis=1)[:, 1:21]
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    for start in range(len(real), n, 100_000):
        m = min(100_000, n - start)
        i = rng.integers(0, len(real), m)
        j = neighbours[i, rng.integers(0, neighbours.shape[1], m)]
        a = rng.uniform(0.3, 1.0, (m, 1)).astype(np.float32)
        v = a * real[i] + (1 - a) * real[j] + 0.35 * rng.standard_normal((m, real.shape[1]), dtype=np.float32) / np.sqrt(real.shape[1])
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def measure(kind: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray | None, k: int) -> dict:
    ids = [str(i) for i in range(len(vectors))]
    start = time.perf_counter()
    index = FaissIndex.build(vectors, ids, IndexConfig(kind=kind), {"model": "minilm", "fingerprint": "-"}, "-")
    build_s = time.perf_counter() - start
    memory = len(faiss.serialize_index(index.index))
    latencies, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, rows = index.index.search(q[None, :], k)
        latencies.append(time.perf_counter() - start)
        found.append(rows[0])
    found_rows = np.stack(found)
    recall = 1.0 if truth is None else float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found_rows, truth)]))
    return {"kind": kind, "shape": index.manifest["index"], "memory_bytes": memory, "build_s": build_s,
            "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            f"recall@{k}": recall, "rows": found_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (demo vectors grown to 20,000, 50 queries): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        rng = np.random.default_rng(0)
        real = rng.standard_normal((500, 384)).astype(np.float32)
        real /= np.linalg.norm(real, axis=1, keepdims=True)
        questions = real[:50] + 0.1 * rng.standard_normal((50, 384)).astype(np.float32)
        args.vectors, args.queries = 20_000, 50
    else:
        real, questions = real_vectors()
    vectors = grow(real, args.vectors)
    queries = np.ascontiguousarray(questions[np.random.default_rng(1).permutation(len(questions))[: args.queries]], dtype=np.float32)
    print(f"{len(vectors):,} vectors of dim {vectors.shape[1]} ({len(real):,} real, the rest perturbed), {len(queries)} real "
          f"questions as queries, FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} threads", flush=True)
    results, truth = [], None
    kinds = args.kinds.split(",")
    for kind in ["flat"] + [k for k in kinds if k != "flat"]:
        r = measure(kind, vectors, queries, truth, args.k)
        truth = r.pop("rows") if kind == "flat" else truth
        r.pop("rows", None)
        results.append(r)
        print(f"  {kind}: built in {r['build_s']:.1f} s", flush=True)
    flat = results[0]
    print(f"\n| index | shape | memory | vs flat | build | p50 | p99 | recall@{args.k} vs flat |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        shape = ", ".join(f"{k}={v}" for k, v in r["shape"].items() if k != "kind")
        print(f"| {r['kind']} | {shape or '-'} | {r['memory_bytes'] / 2**20:,.0f} MiB | {r['memory_bytes'] / flat['memory_bytes']:.3f} "
              f"| {r['build_s']:.0f} s | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r[f'recall@{args.k}']:.3f} |")
    pq = next((r for r in results if r["kind"] == "ivfpq"), None)
    if pq:
        print(f"\nivfpq against its targets: memory {pq['memory_bytes'] / flat['memory_bytes']:.3f} of flat (≤ {TARGETS['memory']}), "
              f"recall@{args.k} {pq[f'recall@{args.k}']:.3f} (≥ {TARGETS['recall@100']}), p50 {pq['p50_ms']:.2f} ms (≤ {TARGETS['p50_ms']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"vectors": len(vectors), "queries": len(queries), "results": results}, indent=1))


if __name__ == "__main__":
    main()
