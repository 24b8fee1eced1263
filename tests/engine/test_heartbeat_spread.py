"""Heartbeats: each busy operation's news is written about once per flush interval, at its own
phase, so that a worker full of busy operations writes small batches, never all of them at once."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import Status
from longrun.store.base import Beat
from longrun.store.sqlite import SQLiteStore
from tests.engine.conftest import Submit, eventually

BUSY = 40
INTERVAL = 0.2


class RecordingStore(SQLiteStore):
    """The real SQLite store, noting when each operation's news was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[str]] = []
        self.writes: dict[str, list[float]] = {}

    async def heartbeat_many(
        self, beats: Sequence[Beat], now: datetime, lease_seconds: float
    ) -> list[Status | Exception]:
        news = [beat.op_id for beat in beats if not beat.update.is_empty]
        self.batches.append(news)
        for op_id in news:
            self.writes.setdefault(op_id, []).append(time.monotonic())
        return await super().heartbeat_many(beats, now, lease_seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordingStore]:
    s = RecordingStore(tmp_path / "spread.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_busy_operations_write_at_their_own_phases(
    store: RecordingStore, app: App, submit: Submit
) -> None:
    stop = asyncio.Event()

    @app.operation("test.busy")
    async def busy(ctx: Any, input: Any) -> None:  # noqa: A002
        step = 0
        while not stop.is_set():  # news every 10 ms: always something to write
            step += 1
            ctx.progress(items_done=step)
            await asyncio.sleep(0.01)

    for _ in range(BUSY):
        await submit("test.busy")
    worker = Worker(store, app, slots=BUSY, flush_interval=INTERVAL, poll_interval=0.1)
    await worker.start()
    try:
        await eventually(lambda: len(worker.running) == BUSY)
        store.batches.clear()
        store.writes.clear()
        # a second and a half of steady state: each operation writes about seven times
        await eventually(
            lambda: len(store.writes) == BUSY and min(map(len, store.writes.values())) >= 6,
            timeout=20,
        )
    finally:
        stop.set()
        await worker.stop(grace=5)
    # spread: a batch carries a few of them (about 40 / 8; in step, every batch carried all 40).
    # A late tick on a loaded machine may carry two phases' worth: the median stays small
    sizes = [len(batch) for batch in store.batches if batch]
    assert statistics.median(sizes) <= BUSY // 3 and len(sizes) >= 10, sizes
    # each operation keeps to about one write per interval
    gaps = [
        statistics.median(b - a for a, b in itertools.pairwise(times))
        for times in store.writes.values()
    ]
    assert 0.5 * INTERVAL <= statistics.median(gaps) <= 2 * INTERVAL, gaps
