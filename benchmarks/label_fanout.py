"""Labelling fan-out throughput: our Ray Data HTTP stage against (a) the teacher simulator with a
fixed per-call latency and concurrency cap, whose configured maximum is cap / latency calls/s, and
(b) the local llama.cpp server with SmolLM2-135M-Instruct. One run each; prints figures. First, what
one labelled question costs (calls, prompt tokens, the completion-token ceiling) under several window
settings, counted with SmolLM2's tokenizer over real SQuAD passages, so a run can be priced before
it is paid for.

    python benchmarks/label_fanout.py [--calls 2000] [--latency 0.2] [--cap 32] [--llama-calls 8]

"end to end" includes Ray Data's start-up (actors, scheduling). "sustained" removes that fixed
cost by differencing two runs after a warm-up run: N / (T(2N) - T(N)).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import ray

from components.call_cache import ReplyWriter, open_store
from components.config import EndpointConfig, LabelConfig
from components.corpus import load_collection
from components.llm.chat import ChatBackend, chat_backend
from components.llm.prompts import ranking_messages
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator


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


def timed(rows: list[dict], backend: ChatBackend, endpoints: list[EndpointConfig]) -> tuple[float, int]:
    """Seconds to complete ``rows`` through the Ray Data stage, each reply stored where it arrives as
    labelling stores it, and how many succeeded."""
    with tempfile.TemporaryDirectory() as store:
        persist = ReplyWriter(open_store(store), backend.model_id(), {})
        start = time.perf_counter()
        ok = sum(int(batch["ok"].sum()) for batch in backend.fan_out(rows, endpoints, persist))
        return time.perf_counter() - start, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--cap", type=int, default=32, help="simulator concurrency cap (429 beyond it)")
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--llama-calls", type=int, default=8, help="0 skips the llama.cpp measurement")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (48 calls against the simulator, no llama.cpp): checks that the benchmark runs, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update({"calls": 48, "cap": 8, "actors": 2, "llama_calls": 0})
    cost_table(5 if args.smoke else 50)

    ray.init(num_cpus=2, object_store_memory=256 * 1024**2, include_dashboard=False, log_to_driver=False)
    demo = load_collection("demo")
    settings = SimSettings(latency_s=args.latency, max_concurrency=args.cap)
    ceiling = args.cap / args.latency
    with SimulatorServer(TeacherSimulator(Oracle(demo, demo.split("train").qrels), settings)) as sim:
        endpoint = EndpointConfig(base_url=sim.base_url, model="sim", max_concurrency=args.cap)
        pool = chat_backend(LabelConfig(endpoints=[endpoint], actors=args.actors, batch_size=2 * args.cap // args.actors,
                                        actor_cpus=0.25, max_attempts=3))
        timed(_rows(demo, 4 * args.cap, 10), pool, [endpoint])  # warm-up: Ray worker processes and imports
        t1, ok1 = timed(_rows(demo, args.calls, 10), pool, [endpoint])
        t2, ok2 = timed(_rows(demo, 2 * args.calls, 10), pool, [endpoint])
        sustained, e2e, ok = args.calls / (t2 - t1), args.calls / t1, ok1 + ok2
        rejected = sim.sim.stats["rejected_429"]
    print(f"simulator: latency {args.latency} s, cap {args.cap} in flight → configured max {ceiling:.1f} calls/s")
    print(f"  ours: sustained {sustained:.1f} calls/s, end to end {e2e:.1f} calls/s ({args.calls} + {2 * args.calls} "
          f"calls in {t1:.1f} s + {t2:.1f} s, {ok} ok, {rejected} rejected 429)")
    print(f"  ratio sustained / max: {sustained / ceiling:.3f}")

    if args.llama_calls:
        local = chat_backend(LabelConfig(actors=1, batch_size=1))  # the server answers one call at a time
        with local.serving() as endpoints:
            seconds, ok = timed(_rows(demo, args.llama_calls, 10), local, endpoints)
        print(f"llama.cpp server (SmolLM2-135M-Instruct Q4_1, 10 passages/call, 2 cores): "
              f"end to end {args.llama_calls / seconds:.2f} calls/s ({ok}/{args.llama_calls} ok in {seconds:.1f} s)")
    ray.shutdown()


if __name__ == "__main__":
    main()
