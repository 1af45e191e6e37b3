"""An append-only store of result rows as parquet shards: how paid-for work survives a kill.

Each ``append`` writes one new shard atomically, so a job killed at any moment leaves only whole
shards; rerunning reads them back and skips every key already done. ``compact`` merges the shards
into one (written before the old ones are removed, so a kill during compaction loses nothing; at
worst rows appear twice and ``latest`` deduplicates them).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Sequence

import pyarrow as pa

from components import storage


class ShardStore:
    def __init__(self, uri: str, key_columns: Sequence[str]) -> None:
        self.uri, self.key_columns = uri, tuple(key_columns)

    def shards(self) -> list[str]:
        return storage.list_files(self.uri, ".parquet")

    def append(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            name = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
            storage.write_parquet(storage.join(self.uri, name), pa.Table.from_pylist(rows))

    def read(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for shard in self.shards():
            rows.extend(storage.read_parquet(shard).to_pylist())
        return rows

    def latest(self, prefer: str = "ok") -> dict[tuple, dict[str, Any]]:
        """One row per key: the last row with a true ``prefer`` column, else the last row."""
        out: dict[tuple, dict[str, Any]] = {}
        for row in self.read():
            key = tuple(row[c] for c in self.key_columns)
            if key not in out or row.get(prefer) or not out[key].get(prefer):
                out[key] = row
        return out

    def compact(self) -> None:
        old = self.shards()
        if len(old) > 1:
            rows = list(self.latest().values())
            self.append(rows)
            for shard in old:
                storage.delete(shard)
