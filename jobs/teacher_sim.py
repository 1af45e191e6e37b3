"""Serve the teacher simulator: an OpenAI-compatible ranking oracle on 127.0.0.1.

It ranks passages containing a gold answer (or judged relevant) first, with Gaussian score noise,
and can inject latency, HTTP errors, malformed and truncated replies. Point the labelling stage at
it with ``idistill label --llm-url http://127.0.0.1:PORT/v1``. Quality numbers obtained with it are
reported as "simulated teacher" with its settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

from components.corpus import load_collection
from components.llm.teacher_sim import Oracle, SimSettings, SimulatorServer, TeacherSimulator
from jobs.common import run_guarded


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="demo", help="BEIR collection whose answers/qrels the oracle knows")
    parser.add_argument("--split", default="train", help="qrels split used where the collection has no answers")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise on 0/1 relevance")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per call")
    parser.add_argument("--jitter", type=float, default=0.0, help="± uniform seconds around --latency")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered 429/500/502/503")
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--truncate-rate", type=float, default=0.0)
    parser.add_argument("--max-concurrency", type=int, default=0, help="429 beyond this many in flight (0: no cap)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def serve() -> None:
        collection = load_collection(args.data)
        oracle = Oracle(collection, collection.split(args.split).qrels)
        settings = SimSettings(
            noise=args.noise, latency_s=args.latency, latency_jitter_s=args.jitter, error_rate=args.error_rate,
            malformed_rate=args.malformed_rate, truncate_rate=args.truncate_rate,
            max_concurrency=args.max_concurrency, seed=args.seed,
        )
        with SimulatorServer(TeacherSimulator(oracle, settings), port=args.port) as server:
            print(f"{settings.describe()} serving {server.base_url} (stats at /stats); Ctrl-C to stop", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass

    return run_guarded(serve)


if __name__ == "__main__":
    sys.exit(main())
