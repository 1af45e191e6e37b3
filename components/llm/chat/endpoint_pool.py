"""OpenAI-compatible endpoints the user runs (vLLM servers, an API, Ray Serve LLM, the simulator),
reached through our Ray Data HTTP stage (``backends.http_stage``: caps, retries, per-batch storage)."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from typing import Any, Iterator

from components.config import EndpointConfig
from components.errors import ConfigError
from components.llm.backends import Persist, http_stage
from components.llm.chat.base import ChatBackend


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


class EndpointPool(ChatBackend):
    name = "endpoints"

    def model_id(self) -> str:
        return "|".join(sorted({discover_model(e).model for e in self.cfg.endpoints}))

    @contextlib.contextmanager
    def serving(self) -> Iterator[list[EndpointConfig]]:
        yield list(self.cfg.endpoints)

    def ready(self, endpoints: list[EndpointConfig]) -> list[EndpointConfig]:
        return [discover_model(e) for e in endpoints]

    def fan_out(self, rows: list[dict[str, Any]], endpoints: list[EndpointConfig], persist: Persist) -> Iterator[Any]:
        return http_stage(rows, endpoints, self.cfg, persist)
