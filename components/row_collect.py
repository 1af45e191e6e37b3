"""Results of a Ray Data job, put back in row order and checked for completeness.

The embedding and ranker-scoring jobs tag every input with its row number and stream results back
in whatever order the actors finish; a result lost on the way (a block dropped by a failed
actor) must be an error naming the job, not a silent row of uninitialised floats."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import numpy as np


def collect_rows(
    batches: Iterable[dict[str, Any]], rows: int, column: str, what: str, width: Optional[int] = None,
    progress: Optional[Callable[[int], Any]] = None,
) -> np.ndarray:
    """``column`` of every batch at its ``row`` (float32; ``width`` columns per row, or one value);
    raise when a row came back twice or never. ``progress`` is told how many rows each batch held."""
    out = np.empty((rows, width) if width else rows, dtype=np.float32)
    seen = np.zeros(rows, dtype=bool)
    for batch in batches:
        at = np.asarray(batch["row"], dtype=np.int64)
        if seen[at].any():
            raise RuntimeError(f"{what}: row {int(at[seen[at]][0])} came back twice")
        out[at] = np.asarray(batch[column], dtype=np.float32)
        seen[at] = True
        if progress is not None:
            progress(len(at))
    if not seen.all():
        raise RuntimeError(f"{what}: {int((~seen).sum())} of {rows} rows never came back (e.g. row {int(np.flatnonzero(~seen)[0])})")
    return out
