"""The prompts: the one place that decides what the teacher LLM and the RAG generator read.

Ranking, RankGPT-style (Sun et al., 2023): passages are tagged ``[1]..[n]`` and the model answers
with identifiers in descending relevance, ``[3] > [1] > [2]``. The template is overridable from
config (``labels.prompt_template``); its placeholders are ``{query}``, ``{n}`` and ``{passages}``.

Answering (the RAG generator, in the Serve endpoint and the RAG evaluation alike): the same tagged
passages, and a short answer citing the tags it used, ``Paris [2]``. Without passages the
closed-book template asks from the model's own knowledge. Overridable with
``generator.prompt_template`` (``{question}``, ``{passages}``).

Question writing (corpus-only mode): one passage, a few examples, and ``n`` questions it answers,
one per line.

Passage text is cut to a word budget so n passages fit small context windows.
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


DEFAULT_ANSWER_SYSTEM = "You answer questions with a short phrase taken from the given passages."

ANSWER_TEMPLATE = (
    "Passages:\n{passages}\n\n"
    "Question: {question}\n\n"
    "Answer with a short phrase from the passages (a few words, no full sentence), "
    "then the number of the passage you used in brackets, like: Lake Orvel [2]"
)

CLOSED_BOOK_TEMPLATE = "Question: {question}\n\nAnswer with a short phrase (a few words, no full sentence)."


def answer_messages(
    question: str,
    passages: Sequence[str],
    max_words: int = 100,
    template: str = ANSWER_TEMPLATE,
    system: str = DEFAULT_ANSWER_SYSTEM,
) -> list[dict[str, str]]:
    """OpenAI chat messages asking the generator to answer ``question`` from ``passages``
    (tagged ``[1]..[n]``); with no passages, the closed-book question."""
    if passages:
        user = template.format(question=question.strip(), passages=format_passages(passages, max_words))
    else:
        user = CLOSED_BOOK_TEMPLATE.format(question=question.strip())
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


DEFAULT_QUESTION_SYSTEM = "You write search questions that a given passage answers."

QUESTION_TEMPLATE = (
    "{examples}"
    "Passage: {passage}\n\n"
    "Write {n} different natural questions that a person might type into a search engine and that this "
    "passage answers. Use your own words instead of copying phrases. One question per line, nothing else."
)


def question_messages(
    passage: str, n: int, examples: Sequence[tuple[str, str]] = (), max_words: int = 200, system: str = DEFAULT_QUESTION_SYSTEM
) -> list[dict[str, str]]:
    """OpenAI chat messages asking the LLM for ``n`` questions that ``passage`` answers, after
    ``examples`` of (passage, question)."""
    shots = "".join(f"Passage: {truncate_words(' '.join(p.split()), max_words)}\nQuestion: {q.strip()}\n\n" for p, q in examples)
    user = QUESTION_TEMPLATE.format(
        examples=f"Examples:\n\n{shots}" if shots else "", passage=truncate_words(" ".join(passage.split()), max_words), n=n
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
