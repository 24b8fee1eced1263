"""SQLite: submits merged into one multi-row INSERT still succeed or fail one by one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from longrun.model import ManualClock, StoreUnavailable
from longrun.store.base import NewOperation
from longrun.store.sqlite import SQLiteStore
from tests.store.conftest import make_op


async def test_a_refused_row_fails_alone(tmp_path: Path, clock: ManualClock) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        news = [make_op(clock) for _ in range(50)]
        twin = NewOperation(news[20].operation)  # the same id again: its INSERT is refused
        results = await asyncio.gather(
            *(store.submit(new) for new in [*news[:30], twin, *news[30:]]),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1 and isinstance(refused[0], StoreUnavailable)
        assert results[30] is refused[0]
        for new in news:
            got = await store.get(new.operation.id)
            assert got is not None and got.time_accepted == new.operation.time_accepted
    finally:
        await store.close()


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_many_concurrent_submits_are_all_stored(
    tmp_path: Path, clock: ManualClock, synchronous: str
) -> None:
    store = SQLiteStore(tmp_path / "s.db", synchronous=synchronous)
    await store.open()
    try:
        news = [make_op(clock) for _ in range(3000)]  # several write batches
        await asyncio.gather(*(store.submit(new) for new in news))
        for new in news[::100]:
            assert await store.get(new.operation.id) == new.operation
        stats = await store.stats(clock.now())
        assert sum(stats.counts.values()) == 3000
    finally:
        await store.close()
