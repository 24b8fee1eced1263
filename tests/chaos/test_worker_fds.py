"""A worker's open fds stay bounded over many cycles of its whole path (claim, progress, raise,
abandon a hung thread, retry, purge, expire tombstones), and all are returned once it stops."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.chaos.runner import scratch_database
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import Operation, RetryableError, Status, SystemClock, new_id
from longrun.store import Store, open_store
from longrun.store.base import NewOperation

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")

CYCLES = 20  # more than either bound: a leak of one fd a cycle fails the test
# fds the store may open after ``open()``, as load asks: on SQLite up to three reader
# connections (db + wal each); on PostgreSQL its pool grows from 1 to at most 10 (a socket each)
POOL_BOUND = {"sqlite": 6, "postgres": 9}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _app(release: threading.Event) -> App:
    app = App()

    @app.operation("fd.ok", max_attempts=1)
    async def ok(ctx: Any, data: Any) -> str:
        for i in range(3):
            ctx.progress(25.0 * (i + 1))
            await ctx.sleep(0.01)
        return "ok"

    @app.operation("fd.sync", max_attempts=1)
    def sync(ctx: Any, data: Any) -> str:
        ctx.log("from a thread")
        ctx.progress(50.0)
        return "sync"

    @app.operation("fd.fail", max_attempts=1)
    async def fail(ctx: Any, data: Any) -> None:
        raise ValueError("fails on purpose")

    @app.operation("fd.retry", max_attempts=2, retry_backoff=0.01)
    async def retry(ctx: Any, data: Any) -> int:
        if ctx.attempt < 2:
            raise RetryableError("again")
        return int(ctx.attempt)

    @app.operation("fd.hang", max_attempts=1, timeout=0.2, cancel_grace=0.05)
    def hang(ctx: Any, data: Any) -> None:
        release.wait(5.0)  # ignores its cancel: the worker abandons the thread

    return app


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


async def _submit(store: Store, op_type: str) -> str:
    now = SystemClock().now()
    op = Operation(
        id=new_id(),
        operation_type=op_type,
        compartment_id="c1",
        status=Status.ACCEPTED,
        time_accepted=now,
        last_action_time=now,
        max_attempts=2 if op_type == "fd.retry" else 1,
    )
    return (await store.submit(NewOperation(op, retry_backoff=0.01))).operation.id


async def _until_terminal(store: Store, ids: list[str], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ops = [await store.get(op_id) for op_id in ids]
        if all(op is not None and op.status.is_terminal for op in ops):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not terminal in {timeout} s: {ops}")
        await asyncio.sleep(0.02)


async def _cycles(url: str, release: threading.Event) -> tuple[int, int, list[int]]:
    """(fds after open, fds after close, fds after each cycle)."""
    store = open_store(url)
    await store.open()
    opened = _fds()
    worker = Worker(
        store,
        _app(release),
        slots=4,
        lease_seconds=3.0,
        flush_interval=0.02,
        poll_interval=0.05,
        reaper_interval=0.05,
        retention_seconds=0.0,
        tombstone_retention_seconds=0.0,
    )
    await worker.start()
    after: list[int] = []
    try:
        for _ in range(CYCLES):
            ids = [await _submit(store, t) for t in ("fd.ok", "fd.sync", "fd.fail", "fd.retry")]
            ids += [await _submit(store, "fd.hang")]
            ids += [await _submit(store, t) for t in ("fd.ok", "fd.sync")]
            await _until_terminal(store, ids)
            assert await worker.housekeeper.purge_once() >= len(ids)  # tombstones, then expired
            after.append(_fds())
        assert worker.counters.abandoned >= CYCLES
    finally:
        await worker.stop(grace=1.0)
        await store.close()
    return opened, _fds(), after


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_worker_fds_stay_bounded_and_are_returned(
    engine: str, tmp_path: Path, release: threading.Event
) -> None:
    if engine == "postgres" and not os.environ.get("LONGRUN_TEST_POSTGRES"):
        pytest.skip("needs LONGRUN_TEST_POSTGRES (scripts/with-postgres)")
    with scratch_database(engine, tmp_path) as url:
        baseline = _fds()
        opened, closed, after = await _cycles(url, release)
    print(engine, baseline, opened, after, closed)
    assert max(after) - opened <= POOL_BOUND[engine], (opened, after)
    assert closed <= baseline, (baseline, closed)  # every fd of the store is given back
