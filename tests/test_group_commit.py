"""Group commit (``components.group_commit``): items stored together when they arrive during a write,
each ``put`` returning only once its item is written, the event loop free meanwhile. No Ray."""

from __future__ import annotations

import asyncio
import time

import pytest

from components.group_commit import GroupCommit


class SlowWrite:
    """A write that takes ``seconds`` of blocking time (as an fsync does) and records each group."""

    def __init__(self, seconds: float, fail_first: int = 0) -> None:
        self.seconds, self.fail_first = seconds, fail_first
        self.groups: list[list[str]] = []
        self.written_at: dict[str, float] = {}

    def __call__(self, items: list[str]) -> None:
        time.sleep(self.seconds)
        if self.fail_first:
            self.fail_first -= 1
            raise OSError("disk full")
        self.groups.append(list(items))
        self.written_at.update({item: time.monotonic() for item in items})


def test_sparse_items_are_each_written_at_once_and_put_returns_after_its_write():
    write = SlowWrite(0.01)
    journal = GroupCommit(write)

    async def main() -> list[float]:
        returned = []
        for item in "abc":
            await journal.put(item)
            returned.append(time.monotonic())
            await asyncio.sleep(0.05)
        return returned

    returned = asyncio.run(main())
    assert write.groups == [["a"], ["b"], ["c"]] and journal.writes == 3
    assert all(write.written_at[item] <= t for item, t in zip("abc", returned))


def test_items_arriving_during_a_write_go_into_the_next_one_together():
    write = SlowWrite(0.2)
    journal = GroupCommit(write)
    returned: dict[str, float] = {}

    async def put(item: str, after: float) -> None:
        await asyncio.sleep(after)
        await journal.put(item)
        returned[item] = time.monotonic()

    async def main() -> None:
        await asyncio.gather(put("first", 0.0), *(put(f"r{i}", 0.05 + 0.01 * i) for i in range(5)))

    asyncio.run(main())
    assert write.groups == [["first"], [f"r{i}" for i in range(5)]] and journal.writes == 2
    assert all(write.written_at[item] <= t for item, t in returned.items())  # nobody told "stored" early


def test_the_event_loop_runs_while_a_write_blocks():
    journal = GroupCommit(SlowWrite(0.3))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> None:
        task = asyncio.ensure_future(ticker())
        await journal.put("x")
        task.cancel()

    asyncio.run(main())
    assert ticks >= 10  # about 30 ticks in 0.3 s; a write on the loop would allow none


def test_a_failed_write_reaches_every_item_of_its_group_and_the_next_write_goes_ahead():
    write = SlowWrite(0.1, fail_first=1)
    journal = GroupCommit(write)

    async def main() -> list[object]:
        first = asyncio.ensure_future(journal.put("lost"))
        await asyncio.sleep(0.02)
        return await asyncio.gather(first, journal.put("next"), return_exceptions=True)

    async def later() -> None:
        await journal.put("kept")

    first, second = asyncio.run(main())
    assert isinstance(first, OSError)  # the first group failed alone
    assert second is None and write.groups == [["next"]]  # the next group was written
    asyncio.run(later())
    assert write.groups[-1] == ["kept"]
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(GroupCommit(SlowWrite(0.0, fail_first=1)).put("y"))
