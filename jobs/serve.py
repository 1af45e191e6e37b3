"""Serve a finished run as a RAG QA HTTP endpoint (Ray Serve): /retrieve, /ask, /healthz, /docs.

Loads the run's index and its distilled query encoder (the base one when the run has none), and
a generator: ``generator.endpoints`` (any OpenAI-compatible server), else a llama.cpp server with
SmolLM2 in the Generator replica. Deployment shape (replicas, autoscaling, CPUs/GPUs) comes from
the Serve config file, the same one ``serve run`` reads. Set the env var named by
``serve.auth_token_env`` (default IDISTILL_API_TOKEN) to require a bearer token.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Optional, Sequence

from components.config import Config
from jobs.common import add_config_arguments, run_guarded
from components.run import run_config
from serve.app import DEFAULT_SERVE_CONFIG, start


def _stop(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--host", help="address to listen on (serve.host, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (serve.port, default 8000)")
    parser.add_argument("--serve-config", default=str(DEFAULT_SERVE_CONFIG), metavar="FILE",
                        help="Serve config YAML whose 'rag' application gives the deployments' shape (default: %(default)s)")
    args = parser.parse_args(argv)

    def serve_forever() -> None:
        overrides = list(args.overrides)
        overrides += [f"serve.host={args.host}"] if args.host else []
        overrides += [f"serve.port={args.port}"] if args.port else []
        cfg = run_config(args.run_dir or Config().run_dir, args.config, overrides)
        url = start(cfg, args.serve_config)
        print(f"serve: RAG endpoint for {cfg.run_dir} at {url} (POST /retrieve, POST /ask, GET /healthz, GET /docs); Ctrl-C stops it")
        signal.signal(signal.SIGTERM, _stop)  # `kill` and process managers, like Ctrl-C
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            from ray import serve

            serve.shutdown()  # replicas stop cleanly, and with them any llama.cpp server

    return run_guarded(serve_forever)


if __name__ == "__main__":
    sys.exit(main())
