"""The ``send`` that every cached fan-out (labels, written questions, RAG answers) hands to
``call_cache.complete``: it brings the endpoints and Ray up on its first call only."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterator

from components.call_cache import Send
from components.config import EndpointConfig, RayConfig
from components.llm.backends import Persist
from components.run import init_ray


@contextlib.contextmanager
def lazy_sender(
    open_endpoints: Callable[[], ContextManager[list[EndpointConfig]]],
    fan_out: Callable[[list[dict[str, Any]], list[EndpointConfig], Persist], Iterator[Any]],
    ray_cfg: RayConfig,
) -> Iterator[Send]:
    """A ``send`` for ``call_cache.complete`` that brings up the endpoints (perhaps a local
    llama.cpp server) and Ray on its first call only, so a fully cached rerun starts neither."""
    with contextlib.ExitStack() as stack:
        pool: list[list[EndpointConfig]] = []

        def send(rows: list[dict[str, Any]], persist: Persist) -> Iterator[Any]:
            if not pool:
                pool.append(stack.enter_context(open_endpoints()))
                init_ray(ray_cfg)
            return fan_out(rows, pool[0], persist)

        yield send
