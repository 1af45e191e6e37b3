"""vLLM engines inside Ray Data on GPU workers (``ray.data.llm``): no HTTP, no endpoint to run."""

from __future__ import annotations

from typing import Any, Iterator

from components.config import EndpointConfig, LabelConfig
from components.llm.backends import Persist, vllm_stage
from components.llm.chat.base import ChatBackend


class VLLMEngines(ChatBackend):
    name = "vllm"
    cfg: LabelConfig

    def served_model(self) -> str:
        return self.cfg.vllm.model

    def fan_out(self, rows: list[dict[str, Any]], endpoints: list[EndpointConfig], persist: Persist) -> Iterator[Any]:
        return vllm_stage(rows, self.cfg, persist)
