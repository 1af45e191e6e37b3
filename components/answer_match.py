"""DPR-style answer matching: does a passage contain one of the gold answer strings?

Follows Karpukhin et al. (2020)'s evaluation so top-k accuracy is comparable with the literature:
Unicode NFD normalisation, DPR's ``SimpleTokenizer`` (runs of letters/numbers/marks, or any single
non-space non-control character), lowercase, and a *contiguous token* match — so "1914" does not
match inside "19145" and "U.S." matches "u . s .".
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Sequence

import regex

_TOKEN = regex.compile(r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])", flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)


def tokenize(text: str) -> list[str]:
    """Lowercased DPR simple tokens of the NFD-normalised text."""
    return [m.group().lower() for m in _TOKEN.finditer(unicodedata.normalize("NFD", text))]


@lru_cache(maxsize=65536)
def _answer_tokens(answer: str) -> tuple[str, ...]:
    return tuple(tokenize(answer))


def has_answer(passage: str, answers: Sequence[str]) -> bool:
    """True when any non-empty answer occurs as a contiguous token run in ``passage``."""
    tokens = tokenize(passage)
    for answer in answers:
        target = _answer_tokens(answer)
        n = len(target)
        if n == 0:
            continue
        for start in range(len(tokens) - n + 1):
            if tuple(tokens[start : start + n]) == target:
                return True
    return False
