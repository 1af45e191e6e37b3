"""Labelling fan-out throughput: our Ray Data HTTP stage against (a) the teacher simulator with a
fixed per-call latency and concurrency cap, whose configured maximum is cap / latency calls/s, and
(b) the local llama.cpp server with SmolLM2-135M-Instruct; prints figures. First, what
one labelled question costs (calls, prompt tokens, the completion-token ceiling) under several window
settings, counted with SmolLM2's tokenizer over real SQuAD passages, so a run can be priced before
it is paid for.

    python benchmarks/label_fanout.py [--calls 2000] [--repeats 3] [--latency 0.2] [--cap 32] [--llama-calls 8]

"end to end" includes Ray Data's start-up (actors, scheduling). "sustained" is the rate between the
moments 10% and 90% of a run's replies had reached the driver, so neither the start-up nor the last
stragglers count; each of ``--repeats`` runs (after an untimed warm-up) is printed, and the median
is the figure. (Differencing two runs' times, N / (T(2N) - T(N)), carried the start-up's jitter into
the rate: the same code read 0.78 to 0.97 of capacity.) The simulator runs in its own process
(``idistill teacher-sim``), as a real endpoint runs elsewhere: in the driver's process its server
would share the GIL with Ray Data's executor.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import ray

from components.call_cache import ReplyWriter, open_store
from components.config import EndpointConfig, LabelConfig
from components.corpus import load_collection
from components.llm.chat import ChatBackend, chat_backend
from components.llm.prompts import ranking_messages


def _rows(collection, calls: int, passages_per_call: int) -> list[dict]:
    qs, docs = collection.questions, collection.corpus.passages()
    rows = []
    for i in range(calls):
        cands = [docs[(i * 3 + j) % len(docs)] for j in range(passages_per_call)]
        rows.append({"request_id": f"q{i}:bench", "messages": json.dumps(ranking_messages(qs.texts[i % len(qs)], cands, 60)),
                     "max_tokens": 6 * passages_per_call + 24})
    return rows


WINDOWS = [(20, 10, 1), (10, 5, 1), (5, 2, 1), (20, 10, 3)]  # (window, step, passes) over 20 candidates
SQUAD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "squad-v1.1-dev"


def cost_table(questions: int) -> None:
    """Mean calls and tokens per labelled question, 20 candidates each, per window setting."""
    import random

    from components.labelling import question_cost

    col = load_collection(str(SQUAD) if SQUAD.exists() else "demo")
    passages, rng = col.corpus.passages(), random.Random(0)
    lists = [(col.questions.texts[i], rng.sample(passages, 20)) for i in rng.sample(range(len(col.questions)), questions)]
    try:
        import llama_cpp

        from components.llm.local_server import packaged_gguf

        vocab = llama_cpp.Llama(model_path=str(packaged_gguf()), vocab_only=True, verbose=False)
        count, counted = (lambda text: len(vocab.tokenize(text.encode(), add_bos=False))), "SmolLM2's tokenizer"
    except Exception:  # llama-cpp-python or the model not installed: a rough stand-in, said so
        count, counted = (lambda text: round(1.3 * len(text.split()))), "1.3 tokens per word (no SmolLM2 tokenizer here)"
    print(f"cost per labelled question: {questions} SQuAD questions x 20 passages (≤ 100 words each), tokens by {counted}, "
          "+5 per message for the chat template")
    print("| window / step | passes | calls | prompt tokens | completion tokens (ceiling) |")
    print("|---|---:|---:|---:|---:|")
    for window, step, passes in WINDOWS:
        cfg = LabelConfig(window=window, step=step, passes=passes)
        costs = [question_cost(q, ps, cfg, count) for q, ps in lists]
        print(f"| {window} / {step} | {passes} | {costs[0].calls} | {sum(c.prompt_tokens for c in costs) / len(costs):,.0f} "
              f"| {sum(c.max_completion_tokens for c in costs) / len(costs):,.0f} |")
    print()


@dataclass
class Timing:
    seconds: float  # start-up included
    ok: int
    shards: int
    marks: list[tuple[float, int]]  # (seconds since the start, replies done) as each batch reached the driver

    def sustained(self, lo: float = 0.1, hi: float = 0.9) -> float:
        """Replies per second between the first batches by which ``lo`` and ``hi`` of them were done."""
        total = self.marks[-1][1]
        t_lo, n_lo = next(m for m in self.marks if m[1] >= lo * total)
        t_hi, n_hi = next(m for m in self.marks if m[1] >= hi * total)
        return (n_hi - n_lo) / (t_hi - t_lo) if t_hi > t_lo else float("nan")


def timed(rows: list[dict], backend: ChatBackend, endpoints: list[EndpointConfig]) -> Timing:
    """Complete ``rows`` through the Ray Data stage, each reply stored where it arrives as labelling
    stores it: the time, the replies that succeeded, the shards they were stored in, and when each
    batch reached the driver."""
    with tempfile.TemporaryDirectory() as store:
        persist = ReplyWriter(open_store(store), backend.model_id(), {})
        start, ok, marks = time.perf_counter(), 0, []
        for batch in backend.fan_out(rows, endpoints, persist):
            ok += int(batch["ok"].sum())
            marks.append((time.perf_counter() - start, ok))
        return Timing(time.perf_counter() - start, ok, len(persist.store.shards()), marks)


@contextmanager
def simulator_process(latency_s: float, cap: int) -> Iterator[str]:
    """The teacher simulator serving the demo collection in a process of its own; yields its base URL."""
    cmd = [sys.executable, "-m", "jobs.teacher_sim", "--port", "0", "--latency", str(latency_s), "--max-concurrency", str(cap)]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"serving (http://\S+)", line)
        if not found:
            raise RuntimeError(f"the simulator did not start (exit {proc.poll()}): {line!r}")
        yield found.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def simulator_stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as reply:
        return json.load(reply)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the median is the figure")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=32, help="simulator concurrency cap (429 beyond it)")
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--llama-calls", type=int, default=8, help="0 skips the llama.cpp measurement")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (48 calls against the simulator, no llama.cpp): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update({"calls": 48, "repeats": 1, "cap": 8, "actors": 2, "llama_calls": 0})
    cost_table(5 if args.smoke else 50)

    ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False, log_to_driver=False)
    demo = load_collection("demo")
    ceiling = args.cap / args.latency
    with simulator_process(args.latency, args.cap) as base_url:
        endpoint = EndpointConfig(base_url=base_url, model="sim", max_concurrency=args.cap)
        pool = chat_backend(LabelConfig(endpoints=[endpoint], actors=args.actors, batch_size=2 * args.cap // args.actors,
                                        actor_cpus=0.25, max_attempts=3))
        timed(_rows(demo, 4 * args.cap, 10), pool, [endpoint])  # warm-up: Ray worker processes and imports
        runs = [timed(_rows(demo, args.calls, 10), pool, [endpoint]) for _ in range(args.repeats)]
        rejected = simulator_stats(base_url).get("rejected_429", 0)
    print(f"simulator (own process): latency {args.latency} s, cap {args.cap} in flight → configured max {ceiling:.1f} calls/s")
    for i, run in enumerate(runs, 1):
        print(f"  run {i}: sustained {run.sustained():.1f} calls/s (ratio {run.sustained() / ceiling:.3f}), end to end "
              f"{args.calls / run.seconds:.1f} calls/s ({args.calls} calls in {run.seconds:.1f} s, {run.ok} ok), "
              f"{run.ok / max(1, run.shards):.1f} replies per shard")
    ratio = statistics.median(run.sustained() for run in runs) / ceiling
    print(f"  ratio sustained / max, median of {len(runs)}: {ratio:.3f} ({rejected} rejected 429 in all)")
    print("  (replies per shard: those that arrived while an actor's previous shard was being written go into one)")

    if args.llama_calls:
        local = chat_backend(LabelConfig(actors=1, batch_size=1))  # the server answers one call at a time
        with local.serving() as endpoints:
            run = timed(_rows(demo, args.llama_calls, 10), local, endpoints)
        print(f"llama.cpp server (SmolLM2-135M-Instruct Q4_1, 10 passages/call, 2 cores): "
              f"end to end {args.llama_calls / run.seconds:.2f} calls/s ({run.ok}/{args.llama_calls} ok in {run.seconds:.1f} s)")
    ray.shutdown()


if __name__ == "__main__":
    main()
