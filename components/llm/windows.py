"""The sliding-window schedule that lets a small-context teacher rank any number of candidates.

As in RankGPT: windows of ``window`` candidates move from the bottom of the list to the top by
``step``; each window's best candidates are carried upwards into the next window, so the strongest
passages can rise from the bottom to the top in a single pass. Pure functions over positions.
"""

from __future__ import annotations

from typing import Sequence

from components.llm.permutation import Status

_SEVERITY: dict[str, int] = {"complete": 0, "repaired": 1, "unusable": 2}


def window_spans(n: int, window: int, step: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans in the order they are ranked: bottom window first, top window last."""
    if window < 2 or step < 1 or step > window:
        raise ValueError("need window >= 2 and 1 <= step <= window")
    if n <= window:
        return [(0, n)]
    spans = []
    end = n
    while True:
        start = max(0, end - window)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


def apply_window(order: Sequence[int], span: tuple[int, int], local_order: Sequence[int]) -> list[int]:
    """Reorder ``order[start:end]`` by ``local_order`` (0-based positions within the window)."""
    start, end = span
    segment = list(order[start:end])
    if sorted(local_order) != list(range(len(segment))):
        raise ValueError(f"local order {list(local_order)} is not a permutation of the {len(segment)}-wide window")
    return list(order[:start]) + [segment[i] for i in local_order] + list(order[end:])


def worst(statuses: Sequence[Status]) -> Status:
    """A label is only as trustworthy as its least trustworthy window."""
    return max(statuses, key=_SEVERITY.__getitem__)
