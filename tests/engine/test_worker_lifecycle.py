"""The worker against the real SQLite store: cancel, timeouts, lost leases, reaping, retention, stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import (
    ManualClock,
    Status,
    SystemClock,
)
from longrun.store import Store
from tests.engine.conftest import Submit, eventually, final

MakeWorker = Callable[..., Worker]


async def test_cooperative_cancel_ends_canceled(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("wait")
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        ctx.progress(10)
        await ctx.sleep(60)

    op = await submit("wait")
    worker = make_worker()
    await worker.start()
    await eventually(lambda: op.id in worker.running)
    await store.request_cancel(op.id, SystemClock().now())
    done = await final(store, op.id)
    assert done.status is Status.CANCELED
    assert not any("abandoned" in e.message for e in done.logs)
    await eventually(lambda: worker.counters.canceled == 1 and not worker.running)


async def test_a_plain_handler_cancels_by_checking(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("loop")
    def handler(ctx: Context, data: dict[str, Any]) -> str:
        while not ctx.cancelled:
            ctx.sleep_sync(0.02)
        return "stopped"

    op = await submit("loop")
    worker = make_worker()
    await worker.start()
    await eventually(lambda: op.id in worker.running)
    await store.request_cancel(op.id, SystemClock().now())
    assert (await final(store, op.id)).status is Status.CANCELED


async def test_an_ignored_cancel_is_abandoned_and_frees_the_slot(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store, release: threading.Event
) -> None:
    @app.operation("stubborn", cancel_grace=0.2)
    def stubborn(ctx: Context, data: dict[str, Any]) -> None:
        release.wait(30)
        ctx.log("too late")

    @app.operation("quick")
    def quick(ctx: Context, data: dict[str, Any]) -> str:
        return "ok"

    op = await submit("stubborn")
    worker = make_worker(slots=1)
    await worker.start()
    await eventually(lambda: op.id in worker.running)
    await store.request_cancel(op.id, SystemClock().now())
    done = await final(store, op.id)
    assert done.status is Status.CANCELED
    assert any(
        "did not stop within 0.2 s" in e.message and "abandoned" in e.message for e in done.logs
    )
    await eventually(lambda: not worker.running and worker.counters.abandoned == 1)
    # the only slot (and its thread) is free again while the abandoned thread still blocks
    second = await submit("quick")
    assert (await final(store, second.id)).status is Status.SUCCEEDED
    release.set()
    after = await store.get(op.id)
    assert after is not None and "too late" not in [e.message for e in after.logs]


async def test_an_abandoned_async_handler_is_cancelled(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    cancelled = asyncio.Event()

    @app.operation("stubborn", cancel_grace=0.1)
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(60)  # ignores ctx.cancelled
        except asyncio.CancelledError:
            cancelled.set()
            raise

    op = await submit("stubborn")
    worker = make_worker()
    await worker.start()
    await eventually(lambda: op.id in worker.running)
    await store.request_cancel(op.id, SystemClock().now())
    assert (await final(store, op.id)).status is Status.CANCELED
    await asyncio.wait_for(cancelled.wait(), timeout=10)


async def test_timeout_fails_with_handler_timeout(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("slow", timeout=0.2)
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        await ctx.sleep(60)

    op = await submit("slow")
    await make_worker().start()
    done = await final(store, op.id)
    assert done.status is Status.FAILED
    assert done.errors[-1].code == "HandlerTimeout"
    assert "0.2 s" in done.errors[-1].message and "abandoned" not in done.errors[-1].message


async def test_timeout_of_a_stuck_handler_abandons_it(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store, release: threading.Event
) -> None:
    @app.operation("stuck", timeout=0.1, cancel_grace=0.1)
    def handler(ctx: Context, data: dict[str, Any]) -> None:
        release.wait(30)

    op = await submit("stuck")
    worker = make_worker()
    await worker.start()
    done = await final(store, op.id)
    assert done.status is Status.FAILED and done.errors[-1].code == "HandlerTimeout"
    assert "abandoned" in done.errors[-1].message
    await eventually(lambda: not worker.running)


async def test_a_lost_lease_stops_every_write(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    clock = ManualClock()
    go = asyncio.Event()
    contexts: list[Context] = []

    @app.operation("long")
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        contexts.append(ctx)
        ctx.progress(10)
        await go.wait()
        ctx.progress(50)
        ctx.log("written after the lease was lost")
        await ctx.sleep(60)

    op = await submit("long", clock=clock)
    worker = make_worker(clock=clock, lease_seconds=30.0)
    await worker.start()

    async def flushed() -> bool:
        current = await store.get(op.id)
        return current is not None and current.percent_complete == 10

    await eventually(flushed)
    clock.advance(60)  # past the lease: this worker looks dead to the reaper
    await store.reap(clock.now())
    done = await final(store, op.id)
    assert done.status is Status.FAILED and done.errors[-1].code == "WorkerLost"
    go.set()
    await eventually(lambda: worker.counters.lease_lost == 1 and not worker.running)
    assert contexts[0].detached
    after = await store.get(op.id)
    assert after is not None
    assert after.percent_complete == 10 and after.version == done.version
    assert "written after the lease was lost" not in [e.message for e in after.logs]


async def test_the_reaper_retries_an_operation_of_a_dead_worker(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("job", max_attempts=2, retry_backoff=0)
    async def handler(ctx: Context, data: dict[str, Any]) -> int:
        return ctx.attempt

    op = await submit("job")
    long_ago = SystemClock().now() - timedelta(minutes=5)
    [claim] = await store.claim("dead-worker", ["job"], long_ago, 3.0, 1)
    assert claim.operation.id == op.id
    worker = make_worker()
    await worker.start()
    done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED and done.result == 2
    assert worker.housekeeper.reaped >= 1


async def test_retention_purges_old_operations(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    app.operation("job")(lambda ctx, data: None)
    op = await submit("job")
    first = make_worker()
    await first.start()
    await final(store, op.id)
    await first.stop()
    later = ManualClock(SystemClock().now() + timedelta(hours=2))
    await make_worker(clock=later, retention_seconds=3600).start()
    await eventually(lambda: _tombstone(store, op.id))
    assert await store.get(op.id) is None


async def _tombstone(store: Store, op_id: str) -> bool:
    return await store.get_tombstone(op_id) is not None


async def test_housekeeping_expires_old_tombstones(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    app.operation("job")(lambda ctx, data: None)
    op = await submit("job")
    await store.request_cancel(op.id, SystemClock().now())
    await store.delete(op.id, SystemClock().now())
    assert await _tombstone(store, op.id)
    much_later = ManualClock(SystemClock().now() + timedelta(days=31))
    worker = make_worker(
        clock=much_later, retention_seconds=3600, tombstone_retention_seconds=30 * 86400
    )
    await worker.start()
    await eventually(lambda: _gone(store, op.id))


async def _gone(store: Store, op_id: str) -> bool:
    return await store.get_tombstone(op_id) is None


async def test_stop_requeues_what_is_still_running(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store, release: threading.Event
) -> None:
    runs: list[int] = []

    @app.operation("job", max_attempts=1)  # a shutdown must not spend the only attempt
    def handler(ctx: Context, data: dict[str, Any]) -> int:
        runs.append(ctx.attempt)
        if len(runs) == 1:
            release.wait(30)  # ignores the shutdown
        return ctx.attempt

    op = await submit("job")
    first = make_worker()
    await first.start()
    await eventually(lambda: op.id in first.running)
    await first.stop(grace=0.1)
    assert not first.running and not first.started
    requeued = await store.get(op.id)
    assert requeued is not None
    assert (requeued.status, requeued.attempt) == (Status.ACCEPTED, 1)
    assert any("worker shutting down" in e.message for e in requeued.logs)
    async with make_worker():
        done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED and done.result == 1 and runs == [1, 1]


async def test_stop_waits_for_handlers_within_grace(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("short")
    async def handler(ctx: Context, data: dict[str, Any]) -> str:
        await asyncio.sleep(0.2)
        return "done"

    op = await submit("short")
    worker = make_worker()
    await worker.start()
    await eventually(lambda: op.id in worker.running)
    await worker.stop(grace=10)
    done = await store.get(op.id)
    assert done is not None and done.status is Status.SUCCEEDED
