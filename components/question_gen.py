"""Corpus-only mode: which passages the LLM writes questions for, the calls, and what is kept.

Passages are sampled seeded and stratified by document (passages sharing a title): documents are
visited round-robin in a seeded order, so one long document cannot fill the question set. Each
reply is parsed and filtered (``llm.questions``); every kept question remembers its source passage.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Optional, Sequence

from components.call_cache import Call
from components.config import GenerateConfig
from components.llm import prompts
from components.llm.questions import QuestionFilter, parse_questions


def sample_passages(ids: Sequence[str], documents: Sequence[str], n: int, seed: int) -> list[str]:
    """Up to ``n`` passage ids, one document at a time in round-robin (documents keyed by
    ``documents[i]``; an empty key makes a passage its own document)."""
    rng = random.Random(seed)
    groups: dict[str, list[str]] = {}
    for pid, doc in zip(ids, documents):
        groups.setdefault(doc or f"\0{pid}", []).append(pid)
    order = sorted(groups)
    rng.shuffle(order)
    queues = [rng.sample(groups[d], len(groups[d])) for d in order]
    out: list[str] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out[:n]


def generation_calls(passage_ids: Sequence[str], passages: Sequence[str], cfg: GenerateConfig) -> list[Call]:
    examples = [(e.passage, e.question) for e in cfg.examples]
    return [
        Call(pid, prompts.question_messages(text, cfg.per_passage, examples, cfg.max_words_per_passage), 24 * cfg.per_passage + 16)
        for pid, text in zip(passage_ids, passages)
    ]


def collect(
    passage_ids: Sequence[str], passages: Sequence[str], replies: Sequence[Optional[str]], cfg: GenerateConfig
) -> tuple[list[dict[str, Any]], Counter]:
    """Kept questions (``question_id``, ``question``, ``source_id``) in sampling order, and the count
    dropped per reason (``failed_call`` for passages whose call never succeeded)."""
    f = QuestionFilter(cfg.min_words, cfg.max_words, cfg.max_copied_words)
    kept: list[dict[str, Any]] = []
    for pid, text, reply in zip(passage_ids, passages, replies):
        if reply is None:
            f.dropped["failed_call"] += cfg.per_passage
            continue
        found = parse_questions(reply)[: cfg.per_passage]
        f.dropped["missing"] += cfg.per_passage - len(found)
        for j, q in enumerate(found):
            if f.keep(q, text):
                kept.append({"question_id": f"gen-{pid}-{j}", "question": q, "source_id": pid})
    f.dropped = Counter({k: v for k, v in f.dropped.items() if v})
    return kept, f.dropped
