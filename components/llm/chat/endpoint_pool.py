"""OpenAI-compatible endpoints the user runs (vLLM servers, an API, Ray Serve LLM, the simulator),
reached through our Ray Data HTTP stage (``backends.http_stage``: caps, retries, per-batch storage)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import Any, Iterator

from components.config import EndpointConfig
from components.errors import ConfigError
from components.llm.backends import Persist, auth_headers, http_stage
from components.urls import endpoint_url, redact_url
from components.llm.chat.base import ChatBackend


def discover_model(endpoint: EndpointConfig) -> EndpointConfig:
    """Fill in ``model: auto`` from the server's ``/v1/models`` (its first model)."""
    if endpoint.model != "auto":
        return endpoint
    url = endpoint_url(endpoint.base_url, "/models")
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=auth_headers(endpoint)), timeout=10) as r:
            model = json.load(r)["data"][0]["id"]
    except (OSError, ValueError, KeyError, IndexError) as e:
        reason = f"HTTP {e.code}" if isinstance(e, urllib.error.HTTPError) else type(e).__name__
        raise ConfigError(f"cannot ask {redact_url(url)} for its model ({reason}); set the endpoint's model explicitly") from None
    return endpoint.model_copy(update={"model": model})


class EndpointPool(ChatBackend):
    name = "endpoints"

    def served_model(self) -> str:
        """The models the pool serves: one name for a pool of replicas, so adding a replica of the
        same model re-pays nothing."""
        return "|".join(sorted({discover_model(e).model for e in self.cfg.endpoints}))

    @contextlib.contextmanager
    def serving(self) -> Iterator[list[EndpointConfig]]:
        yield list(self.cfg.endpoints)

    def ready(self, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        return [discover_model(e) for e in endpoints]

    def fan_out(self, rows: list[dict[str, Any]], endpoints: list[EndpointConfig], persist: Persist) -> Iterator[Any]:
        return http_stage(rows, endpoints, self.cfg, persist)
