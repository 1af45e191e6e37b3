"""Reading and filtering LLM-written training questions (corpus-only mode).

``parse_questions`` turns a reply into candidate lines (numbering, bullets and "Question:" labels
removed). ``QuestionFilter`` then drops, and counts per reason, what would hurt training: empty
lines, questions too short or too long, duplicates (after normalization, across the whole set), and
questions that copy a long span of their passage (a retriever learns nothing from those but string
matching). The consistency filter, which needs the retriever, lives with the generation stage.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_LEAD = re.compile(r"^\s*(?:[-*•]+|\(?\d+[.):]|q\d*[.:]|question\s*\d*\s*[:.-])\s*", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def parse_questions(text: str) -> list[str]:
    """One candidate per non-empty line, without list markers, labels or wrapping quotes."""
    out = []
    for line in text.splitlines():
        q = _LEAD.sub("", line).strip().strip("\"'`*").strip()
        if q:
            out.append(" ".join(q.split()))
    return out


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def longest_shared_span(question: str, passage: str) -> int:
    """Length in words of the longest run of consecutive words the question shares with the passage."""
    q, p = _words(question), _words(passage)
    best, prev = 0, [0] * (len(p) + 1)
    for i in range(1, len(q) + 1):
        cur = [0] * (len(p) + 1)
        for j in range(1, len(p) + 1):
            if q[i - 1] == p[j - 1]:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


@dataclass
class QuestionFilter:
    min_words: int
    max_words: int
    max_copied_words: int
    dropped: Counter = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)

    def keep(self, question: str, passage: str) -> bool:
        """Whether ``question`` (written from ``passage``) is kept; counts the reason when not."""
        words = _words(question)
        reason = ""
        if not words:
            reason = "empty"
        elif len(words) < self.min_words:
            reason = "too_short"
        elif len(words) > self.max_words:
            reason = "too_long"
        elif " ".join(words) in self.seen:
            reason = "duplicate"
        elif longest_shared_span(question, passage) >= self.max_copied_words:
            reason = "copies_passage"
        if reason:
            self.dropped[reason] += 1
            return False
        self.seen.add(" ".join(words))
        return True
