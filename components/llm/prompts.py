"""The listwise ranking prompt: the one place that decides what the teacher LLM reads.

RankGPT-style (Sun et al., 2023): passages are tagged ``[1]..[n]`` and the model answers with
identifiers in descending relevance, ``[3] > [1] > [2]``. Passage text is cut to a word budget so n
passages fit small context windows. The template is overridable from config (``labels.prompt``);
its placeholders are ``{query}``, ``{n}`` and ``{passages}``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

DEFAULT_SYSTEM = "You are a search engine that ranks passages by how well they answer a question."

DEFAULT_TEMPLATE = (
    "Question: {query}\n\n"
    "Passages:\n{passages}\n\n"
    "Rank the {n} passages above from most to least relevant to the question. "
    "Answer only with all {n} identifiers in order, like [2] > [1] > [3], and nothing else."
)


def truncate_words(text: str, max_words: int) -> str:
    """Cut ``text`` to ``max_words`` whitespace tokens (model-agnostic stand-in for a token budget)."""
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + " …"


def format_passages(passages: Sequence[str], max_words: int) -> str:
    return "\n".join(f"[{i}] {truncate_words(' '.join(p.split()), max_words)}" for i, p in enumerate(passages, 1))


def ranking_messages(
    query: str,
    passages: Sequence[str],
    max_words: int = 100,
    template: str = DEFAULT_TEMPLATE,
    system: str = DEFAULT_SYSTEM,
) -> list[dict[str, str]]:
    """OpenAI chat messages asking the teacher to rank ``passages`` for ``query``."""
    user = template.format(query=query.strip(), n=len(passages), passages=format_passages(passages, max_words))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def prompt_hash(messages: Sequence[dict[str, str]]) -> str:
    """Identity of a rendered prompt: a label is reused only for exactly the same request text."""
    return hashlib.sha256(json.dumps(list(messages), ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]
