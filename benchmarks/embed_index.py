"""Corpus embedding throughput (our Ray Data path vs. plain ``SentenceTransformer.encode``) and
FAISS search latency at the corpus size. One run each; prints figures side by side.

    python benchmarks/embed_index.py [--data ../shared/datasets/squad-v1.1-dev] [--actors 2]

Both paths use the same model, passages, batch size and sequence length. The Ray figure includes
actor start-up and model loading in each actor: what a job pays; its steady state comes from
embedding the corpus twice over (start-up cancels in the difference), after an untimed warm-up on
a few batches, so the 1x and 2x runs start alike (the first dataset of a process also pays Ray
Data's own one-off start, which the difference would otherwise count as speed). Last, the path a job
actually takes for this corpus (``components.embedding.in_driver``) and its ratio to plain, with
and without plain's model load (the job's path loads its model inside the measured call).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from components import encoders
from components.config import EncoderConfig, IndexConfig, RayConfig
from components.corpus import load_collection
from components.embedding import embed_texts, in_driver
from components.index import FaissIndex

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "squad-v1.1-dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else "demo")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--num-cpus", type=int, default=None, help="local Ray cluster CPUs (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the demo collection, 20 queries): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update({"data": "demo", "queries": 20, "max_seq_length": 64})

    import ray
    import torch

    col = load_collection(args.data)
    passages = col.corpus.passages()
    cfg = EncoderConfig(batch_size=args.batch_size, max_seq_length=args.max_seq_length)
    start = time.perf_counter()
    model = encoders.load_encoder(cfg)
    load_s = time.perf_counter() - start  # a user's own script pays it too, as the job's path does
    dim = model.get_embedding_dimension()
    device = encoders.resolve_device(cfg.device)
    print(f"data: {args.data} ({len(passages)} passages); model all-MiniLM-L6-v2; device {device}; "
          f"batch {cfg.batch_size}; max_seq_length {cfg.max_seq_length}; torch threads {torch.get_num_threads()}")

    start = time.perf_counter()
    plain = encoders.encode(model, passages, cfg)
    plain_s = time.perf_counter() - start

    ray.init(num_cpus=args.num_cpus, object_store_memory=512 * 1024**2, include_dashboard=False, log_to_driver=False)
    forced = RayConfig(embed_actors=args.actors, embed_in_driver_max=0)  # Ray Data whatever the size
    embed_texts(passages[: args.actors * cfg.batch_size], cfg, forced, dim)  # untimed: the process's first dataset pays one-off costs
    start = time.perf_counter()
    via_ray = embed_texts(passages, cfg, forced, dim)
    ray_s = time.perf_counter() - start
    start = time.perf_counter()
    embed_texts(passages + passages, cfg, forced, dim)
    ray2_s = time.perf_counter() - start
    steady = len(passages) / max(1e-9, ray2_s - ray_s)  # start-up cancels in the difference
    startup = max(0.0, ray_s - len(passages) / steady)
    chosen = RayConfig(embed_actors=args.actors)  # the defaults: what a job does with this corpus
    where = "the driver" if in_driver(len(passages), chosen) else "Ray Data"
    start = time.perf_counter()
    embed_texts(passages, cfg, chosen, dim)
    chosen_s = time.perf_counter() - start
    ray.shutdown()
    agree = float(np.abs(plain - via_ray).max())

    print(f"plain SentenceTransformer.encode : {len(passages) / plain_s:8.1f} passages/s ({plain_s:.1f} s)")
    print(f"Ray Data actor pool ({args.actors} actors)  : {len(passages) / ray_s:8.1f} passages/s ({ray_s:.1f} s, "
          f"incl. start-up); steady state {steady:.1f} passages/s, start-up {startup:.1f} s")
    print(f"ratio Ray / plain                : {plain_s / ray_s:8.2f} incl. start-up, {steady * plain_s / len(passages):.2f} "
          f"steady state   (max |difference| {agree:.2e})")
    print(f"a job embeds these {len(passages)} passages in {where} (ray.embed_in_driver_max={chosen.embed_in_driver_max}): "
          f"{len(passages) / chosen_s:.1f} passages/s, ratio to plain {plain_s / chosen_s:.2f}, to plain with its "
          f"model load ({load_s:.1f} s, what a user's own script pays) {(load_s + plain_s) / chosen_s:.2f}")

    index = FaissIndex.build(plain, col.corpus.ids, IndexConfig(kind="flat"), encoders.identity(model, cfg), "bench")
    questions = col.questions.texts[: args.queries]
    qvecs = encoders.encode(model, questions, cfg)
    latencies = []
    for q in qvecs:
        t = time.perf_counter()
        index.search(q[None, :], 100)
        latencies.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    index.search(qvecs, 100)
    batch_ms = (time.perf_counter() - t) * 1e3
    p = np.percentile(latencies, [50, 99])
    print(f"FAISS flat-IP, {len(passages)} x {dim}, top-100: single-query p50 {p[0]:.3f} ms, p99 {p[1]:.3f} ms; "
          f"batch of {len(qvecs)} in {batch_ms:.1f} ms ({statistics.mean(latencies):.3f} ms mean single)")


if __name__ == "__main__":
    main()
