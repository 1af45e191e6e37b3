"""The interface every chat backend implements, and the lazy sender built on it."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Iterator

from components.call_cache import Send
from components.config import ChatClientConfig, EndpointConfig, RayConfig
from components.llm.backends import Persist
from components.run import init_ray


class ChatBackend(ABC):
    """Where chat requests go. Rows are ``call_cache`` requests (``request_id``, JSON ``messages``,
    ``max_tokens``); results are DataFrames of ``request_id, text, ok, error, tokens_in,
    tokens_out, latency_s, attempts``, each batch ``persist``ed before it is yielded."""

    name: ClassVar[str]

    def __init__(self, cfg: ChatClientConfig) -> None:
        self.cfg = cfg

    def model_id(self) -> str:
        """The model name replies are stored under, known before any call is made: cache keys need
        it, so a fully cached rerun starts neither Ray nor a server. The configured ``model_id``
        when set (it keeps the cache across a rename), else what the backend serves."""
        return self.cfg.model_id or self.served_model()

    @abstractmethod
    def served_model(self) -> str:
        """The name of the model the backend serves, known without a chat call."""

    @contextlib.contextmanager
    def serving(self) -> Iterator[list[EndpointConfig]]:
        """Bring the backend up for the block (a local server starts here); the HTTP endpoints it
        answers on, none for engines that run inside Ray Data."""
        yield []

    def ready(self, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        """The endpoints as requests need them (e.g. ``model: auto`` asked of the server). May
        call the network, so callers that must start while an endpoint is down defer it."""
        return endpoints

    @abstractmethod
    def fan_out(self, rows: list[dict[str, Any]], endpoints: list[EndpointConfig], persist: Persist) -> Iterator[Any]:
        """Send every row over Ray Data; yield result batches after ``persist`` stored each."""

    @contextlib.contextmanager
    def sender(self, ray_cfg: RayConfig) -> Iterator[Send]:
        """A ``send`` for ``call_cache.complete`` that brings the backend and Ray up on its first
        call only."""
        with contextlib.ExitStack() as stack:
            pool: list[list[EndpointConfig]] = []

            def send(rows: list[dict[str, Any]], persist: Persist) -> Iterator[Any]:
                if not pool:
                    pool.append(self.ready(stack.enter_context(self.serving())))
                    init_ray(ray_cfg)
                return self.fan_out(rows, pool[0], persist)

            yield send
