"""Several rankings of one list into one: the position-bias control of labelling.

A listwise LLM favours passages shown early. Ranking the same candidates in several seeded
shuffles and aggregating cancels most of that bias (a passage's prompt position no longer follows
the base retriever's order), at the price of one set of calls per pass.

Borda count: over ``m`` rankings of the same ``n`` items, an item earns ``n - r`` points for rank
``r`` (0-based) in each; the aggregate orders items by total points, ties broken by the first
ranking. Agreement is the mean Kendall's τ over all pairs of rankings: 1 when every pass agrees,
about 0 when they are unrelated; it says how much a label can be trusted.
"""

from __future__ import annotations

import itertools
from typing import Hashable, Sequence, TypeVar

T = TypeVar("T", bound=Hashable)


def borda(rankings: Sequence[Sequence[T]]) -> list[T]:
    """The Borda aggregate of rankings over the same items (best first)."""
    if not rankings:
        raise ValueError("no rankings to aggregate")
    items = list(rankings[0])
    if any(sorted(map(repr, r)) != sorted(map(repr, items)) for r in rankings):
        raise ValueError("every ranking must order the same items")
    n = len(items)
    points = {item: 0 for item in items}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            points[item] += n - rank
    first = {item: i for i, item in enumerate(items)}
    return sorted(items, key=lambda item: (-points[item], first[item]))


def kendall_tau(a: Sequence[T], b: Sequence[T]) -> float:
    """Kendall's τ between two rankings of the same items (1: identical, −1: reversed)."""
    pos = {item: i for i, item in enumerate(b)}
    pairs = list(itertools.combinations(a, 2))
    if not pairs:
        return 1.0
    concordant = sum(1 if pos[x] < pos[y] else -1 for x, y in pairs)  # x is above y in a
    return concordant / len(pairs)


def agreement(rankings: Sequence[Sequence[T]]) -> float:
    """Mean pairwise Kendall's τ (1.0 for a single ranking)."""
    taus = [kendall_tau(a, b) for a, b in itertools.combinations(rankings, 2)]
    return sum(taus) / len(taus) if taus else 1.0
