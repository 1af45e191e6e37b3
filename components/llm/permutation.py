"""Parsing and repairing the teacher's ranking text into a permutation. Pure functions.

A reply like ``"[3] > [1] > [2]"`` becomes the 0-based order ``[2, 0, 1]``. Real replies are
messy: extra words, out-of-range or repeated ids, lists cut short by a token limit. Repair keeps the
first mention of each valid id, then appends the missing ids in their prompt order (the base
retriever's order, the best prior we have). Every label records which case applied:

* ``complete``: every id exactly once, nothing to repair;
* ``repaired``: at least ``min_fraction`` of the ids were ranked, the rest appended;
* ``unusable``: too little was ranked to trust; excluded from training, never silently kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Status = Literal["complete", "repaired", "unusable"]

_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_BARE = re.compile(r"\b(\d+)\b")


@dataclass(frozen=True)
class Parsed:
    order: list[int]  # 0-based prompt positions, most relevant first; always a full permutation
    status: Status
    ranked: int  # how many ids the reply itself ranked (valid, first mention)
    dropped: int  # ids mentioned that were out of range or repeated


def extract_ids(text: str) -> list[int]:
    """1-based ids in reply order: bracketed ``[k]`` when present, else bare integers. A number
    of more than nine digits (a runaway reply) is no passage: 0, dropped like any out-of-range id,
    never handed to ``int`` (which refuses strings over 4,300 digits)."""
    found = _BRACKETED.findall(text)
    return [int(x) if len(x.lstrip("0")) <= 9 else 0 for x in (found if found else _BARE.findall(text))]


def parse_permutation(text: str, n: int, min_fraction: float = 0.5) -> Parsed:
    """Turn a reply into a full permutation of ``range(n)`` and say how much was repaired."""
    if n < 1:
        raise ValueError("a ranking needs at least one passage")
    seen: set[int] = set()
    order: list[int] = []
    dropped = 0
    for ident in extract_ids(text):
        pos = ident - 1
        if 0 <= pos < n and pos not in seen:
            seen.add(pos)
            order.append(pos)
        else:
            dropped += 1
    ranked = len(order)
    order.extend(p for p in range(n) if p not in seen)
    if ranked == n and dropped == 0:
        status: Status = "complete"
    elif ranked >= max(1, math.ceil(min_fraction * n)) or ranked == n:
        status = "repaired"
    else:
        status = "unusable"
    return Parsed(order=order, status=status, ranked=ranked, dropped=dropped)
