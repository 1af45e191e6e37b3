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
model. Memory is the serialized index (what a replica holds in RAM); a refined IVF-PQ index's
exact float16 vectors stay on disk, memory-mapped, and are shown apart ("on disk"). Latency is one
query per call through ``FaissIndex.search`` (the refinement included), as the endpoint searches
an unbatched request, with FAISS's threads (this machine: 2); for a refined index also with its
vectors file dropped from the page cache before every query ("cold"), the case of a replica whose
RAM cannot cache the file.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from components.config import IndexConfig
from components.index import VECTORS_FILE, FaissIndex, map_vectors

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


def timed_search(index: FaissIndex, queries: np.ndarray, k: int, cold: str | None = None) -> tuple[list[float], np.ndarray]:
    """Per-query latency and the rows found; with ``cold`` (the vectors file), the file is unmapped
    and dropped from the page cache before each query, so its reads come from disk."""
    latencies, found = [], []
    for q in queries:
        if cold:
            index.exact = None
            with open(cold, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            index.exact = map_vectors(cold)
        start = time.perf_counter()
        ids, _ = index.search(q[None, :], k)
        latencies.append(time.perf_counter() - start)
        found.append([int(i) for i in ids[0]])
    return latencies, np.array(found)


def figures(latencies: list[float], found_rows: np.ndarray, truth: np.ndarray | None, k: int) -> dict:
    """p50/p99 latency and recall@k against flat (1 for flat itself, which has no truth yet)."""
    recall = 1.0 if truth is None else float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found_rows, truth)]))
    return {"p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99)),
            f"recall@{k}": recall, "rows": found_rows}


def measure(spec: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray | None, k: int, where: Path) -> list[dict]:
    """Build ``spec`` (a kind, or ``ivfpq:M:R`` for pq_m M and refine R), save and load it as the
    pipeline does, and time it; a refined index is timed again with the refinement off."""
    kind, *rest = spec.split(":")
    settings = {"pq_m": int(rest[0]), "refine": int(rest[1])} if rest else {}
    ids = [str(i) for i in range(len(vectors))]
    start = time.perf_counter()
    built = FaissIndex.build(vectors, ids, IndexConfig(kind=kind, **settings), {"model": "minilm", "fingerprint": "-"}, "-")
    build_s = time.perf_counter() - start
    folder = where / spec.replace(":", "-")
    built.save(str(folder))
    index = FaissIndex.load(str(folder))
    shared = {"shape": index.manifest["index"], "memory_bytes": len(faiss.serialize_index(index.index)), "build_s": build_s}
    result = {"kind": spec, **shared, "disk_bytes": (folder / VECTORS_FILE).stat().st_size if index.exact is not None else 0,
              **figures(*timed_search(index, queries, k), truth, k)}
    if index.exact is None:
        return [result]
    cold = figures(*timed_search(index, queries[:200], k, cold=str(folder / VECTORS_FILE)), None, k)
    result.update(cold_p50_ms=cold["p50_ms"], cold_p99_ms=cold["p99_ms"])
    index.exact = None  # the same codes without the exact re-ranking
    return [result, {"kind": f"{spec}, refine off", **shared, "disk_bytes": 0, **figures(*timed_search(index, queries, k), truth, k)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq,ivfpq:128:4",
                        help="flat, hnsw, ivf, ivfpq (the config's defaults), or ivfpq:M:R for pq_m M and refine R")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (random vectors grown to 20,000, 50 queries, flat and ivfpq): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        rng = np.random.default_rng(0)
        real = rng.standard_normal((500, 384)).astype(np.float32)
        real /= np.linalg.norm(real, axis=1, keepdims=True)
        questions = real[:50] + 0.1 * rng.standard_normal((50, 384)).astype(np.float32)
        args.vectors, args.queries, args.kinds = 20_000, 50, "flat,ivfpq"
    else:
        real, questions = real_vectors()
    vectors = grow(real, args.vectors)
    queries = np.ascontiguousarray(questions[np.random.default_rng(1).permutation(len(questions))[: args.queries]], dtype=np.float32)
    print(f"{len(vectors):,} vectors of dim {vectors.shape[1]} ({len(real):,} real, the rest perturbed), {len(queries)} real "
          f"questions as queries, FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} threads", flush=True)
    results, truth = [], None
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory(dir=CACHE.parent if CACHE.parent.exists() else None) as where:
        for kind in ["flat"] + [k for k in kinds if k != "flat"]:
            for r in measure(kind, vectors, queries, truth, args.k, Path(where)):
                truth = r.pop("rows") if kind == "flat" else truth
                r.pop("rows", None)
                results.append(r)
            print(f"  {kind}: built in {r['build_s']:.1f} s", flush=True)
    flat = results[0]
    print(f"\n| index | shape | memory (RAM) | vs flat | on disk, mapped | build | p50 | p99 | cold p50 / p99 | recall@{args.k} vs flat |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        shape = ", ".join(f"{k}={v}" for k, v in r["shape"].items() if k != "kind")
        cold = f"{r['cold_p50_ms']:.2f} / {r['cold_p99_ms']:.2f} ms" if "cold_p50_ms" in r else "-"
        print(f"| {r['kind']} | {shape or '-'} | {r['memory_bytes'] / 2**20:,.0f} MiB | {r['memory_bytes'] / flat['memory_bytes']:.3f} "
              f"| {r['disk_bytes'] / 2**20:,.0f} MiB | {r['build_s']:.0f} s | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {cold} "
              f"| {r[f'recall@{args.k}']:.3f} |")
    pq = next((r for r in results if r["kind"] == "ivfpq"), None)
    if pq:
        print(f"\nivfpq against its targets (the defaults): RAM {pq['memory_bytes'] / flat['memory_bytes']:.3f} of flat (≤ {TARGETS['memory']}), "
              f"recall@{args.k} {pq[f'recall@{args.k}']:.3f} (≥ {TARGETS['recall@100']}), p50 {pq['p50_ms']:.2f} ms (≤ {TARGETS['p50_ms']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"vectors": len(vectors), "queries": len(queries), "results": results}, indent=1))


if __name__ == "__main__":
    main()
