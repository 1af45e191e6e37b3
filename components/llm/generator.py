"""The RAG generator client: retrieved passages in, a short cited answer out.

One client for the Serve endpoint (``/ask``) and the RAG evaluation, so both send the same prompt
(``prompts.answer_messages``) with the same retry rules (``ChatPool``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from components.config import EndpointConfig, GeneratorConfig
from components.errors import GeneratorUnavailable
from components.llm import prompts
from components.llm.answers import parse_answer
from components.llm.backends import ChatPool


def generation_messages(cfg: GeneratorConfig, question: str, passages: Sequence[str]) -> list[dict[str, str]]:
    """The generator's prompt for ``question`` over ``passages`` (closed-book when empty)."""
    return prompts.answer_messages(
        question,
        passages,
        max_words=cfg.max_words_per_passage,
        template=cfg.prompt_template or prompts.ANSWER_TEMPLATE,
        system=cfg.system_prompt or prompts.DEFAULT_ANSWER_SYSTEM,
    )


@dataclass
class GeneratedAnswer:
    answer: str
    cited_ids: list[str]
    raw: str
    model: str


class Generator:
    """Answers one question at a time from its passages through an endpoint pool."""

    def __init__(self, endpoints: list[EndpointConfig], cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.pool = ChatPool(endpoints, cfg.client_settings())
        self.model = "|".join(sorted({e.model for e in endpoints}))

    async def answer(self, question: str, passage_ids: Sequence[str], passages: Sequence[str]) -> GeneratedAnswer:
        messages = generation_messages(self.cfg, question, passages)
        (result,) = await self.pool.run([(messages, self.cfg.max_tokens)])
        if not result.ok:
            raise GeneratorUnavailable(f"the generator did not answer after {result.attempts} attempt(s): {result.error}")
        parsed = parse_answer(result.text, list(passage_ids))
        return GeneratedAnswer(parsed.answer, parsed.cited_ids, result.text, self.model)
