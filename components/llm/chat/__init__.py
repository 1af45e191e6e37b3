"""Chat backends: one interface (``ChatBackend``) for every caller that talks to an LLM, a class
per backend, one file each, in the manner of rank_llm's model backends.

Labelling, question writing and the RAG evaluation fan batches of requests out over Ray Data
through ``backend.sender``; the Serve generator answers one request at a time through
``backend.ready`` + ``components.llm.generator``. A new backend is one subclass of ``ChatBackend``
in one file, and one line in ``chat_backend``.

- ``EndpointPool``: OpenAI-compatible endpoints (vLLM servers, an API, Ray Serve LLM, the simulator).
- ``LocalServer``: a server on 127.0.0.1 for the block's duration, llama.cpp with SmolLM2 (or any
  GGUF; the embedded default when no endpoint is configured) or vLLM on the replica's GPU.
- ``VLLMEngines``: vLLM engines inside Ray Data on GPU workers (``labels.backend: vllm``).
"""

from __future__ import annotations

from components.config import ChatClientConfig, LabelConfig
from components.llm.chat.base import ChatBackend
from components.llm.chat.endpoint_pool import EndpointPool
from components.llm.chat.local import LocalServer
from components.llm.chat.vllm_engines import VLLMEngines


def chat_backend(cfg: ChatClientConfig) -> ChatBackend:
    """The backend a config section names: vLLM engines (``labels.backend: vllm``), else the
    configured endpoint pool, else a local server (``local.engine``)."""
    if isinstance(cfg, LabelConfig) and cfg.backend == "vllm":
        return VLLMEngines(cfg)
    if cfg.endpoints:
        return EndpointPool(cfg)
    return LocalServer(cfg)


__all__ = ["ChatBackend", "EndpointPool", "LocalServer", "VLLMEngines", "chat_backend"]
