"""Which OpenAI-compatible endpoints a job talks to: the configured pool, or the local llama.cpp
server started for the duration of a block. Shared by the teacher and the generator."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from typing import Iterator

from components.config import ChatClientConfig, EndpointConfig, LabelConfig
from components.errors import ConfigError
from components.llm.local_server import LocalLLMServer


def discover_model(endpoint: EndpointConfig) -> EndpointConfig:
    """Fill in ``model: auto`` from the server's ``/v1/models`` (its first model)."""
    if endpoint.model != "auto":
        return endpoint
    url = endpoint.base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            model = json.load(r)["data"][0]["id"]
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise ConfigError(f"cannot ask {url} for its model ({e}); set the endpoint's model explicitly") from None
    return endpoint.model_copy(update={"model": model})


@contextlib.contextmanager
def open_pool(cfg: ChatClientConfig) -> Iterator[list[EndpointConfig]]:
    """The configured pool, or a local llama.cpp server for the block's duration."""
    if cfg.endpoints:
        yield [discover_model(e) for e in cfg.endpoints]
    else:
        with LocalLLMServer(cfg.local) as endpoint:
            yield [endpoint]


def pool_model_name(cfg: ChatClientConfig) -> str:
    """The model name(s) a pool answers with, known before any call is made (cache keys need it,
    so a fully cached rerun starts neither Ray nor a server)."""
    if cfg.endpoints:
        return "|".join(sorted({discover_model(e).model for e in cfg.endpoints}))
    return LocalLLMServer.alias(cfg.local)


@contextlib.contextmanager
def teacher_pool(cfg: LabelConfig) -> Iterator[list[EndpointConfig]]:
    """The teacher's endpoints; none for vLLM, whose engines run inside Ray Data."""
    if cfg.backend == "vllm":
        yield []
    else:
        with open_pool(cfg) as endpoints:
            yield endpoints


def teacher_model(cfg: LabelConfig) -> str:
    """The teacher's model name: part of every cached call's key."""
    return cfg.vllm.model if cfg.backend == "vllm" else pool_model_name(cfg)
