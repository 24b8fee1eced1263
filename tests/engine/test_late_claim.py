"""A claim that lands late (its lease reckoned from when it was asked for) never lets an
operation run twice at once: the worker renews such leases before starting the handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from longrun.engine.registry import App
from longrun.model import Status
from longrun.store.base import Claim
from longrun.store.sqlite import SQLiteStore
from tests.engine.conftest import Submit, eventually, final

LEASE = 1.0


class SlowClaimStore(SQLiteStore):
    """The real SQLite store whose first claim answers 1.5 leases after it was asked for, as a
    claim queued behind a store outage does (``now`` was taken before the wait)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.slow = True

    async def claim(
        self, worker_id: str, operation_types: Sequence[str], now: datetime, lease_seconds: float,
        limit: int,
    ) -> list[Claim]:
        if self.slow:
            self.slow = False
            await asyncio.sleep(1.5 * LEASE)
        return await super().claim(worker_id, operation_types, now, lease_seconds, limit)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SlowClaimStore]:
    s = SlowClaimStore(tmp_path / "late.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_a_late_claim_renews_before_the_handler_runs(
    store: SlowClaimStore, app: App, submit: Submit, make_worker: Any
) -> None:
    runs: list[int] = []
    running = 0
    overlapped = False

    @app.operation("test.late", max_attempts=3)
    async def late(ctx: Any, input: Any) -> None:  # noqa: A002
        nonlocal running, overlapped
        running += 1
        overlapped = overlapped or running > 1
        runs.append(ctx.attempt)
        await asyncio.sleep(0.5)  # long enough for a reaper pass to hand it on if it could
        running -= 1

    op = await submit("test.late")
    # two workers on the store: had the late lease not been renewed, the reaper would requeue
    # the operation while it runs and the other worker would start it again
    first = make_worker(lease_seconds=LEASE, reaper_interval=0.05, poll_interval=0.05)
    other = make_worker(lease_seconds=LEASE, reaper_interval=0.05, poll_interval=0.05)
    await first.start()  # its claim lands 1.5 leases after it was asked for

    async def claimed() -> bool:
        got = await store.get(op.id)
        return got is not None and got.status is Status.IN_PROGRESS

    await eventually(claimed)
    await other.start()
    done = await final(store, op.id, timeout=15)
    assert done.status is Status.SUCCEEDED
    assert not overlapped and runs == [1], runs
