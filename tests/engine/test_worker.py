"""The worker against the real SQLite store: outcomes, retries, cancel, timeouts, leases, stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import (
    ConfigurationError,
    LogLevel,
    ManualClock,
    Operation,
    OperationError,
    RetryableError,
    Status,
    SystemClock,
    new_id,
)
from longrun.store import Store
from longrun.store.base import NewOperation
from tests.engine.conftest import Submit, eventually, final

MakeWorker = Callable[..., Worker]


class Copy(BaseModel):
    source: str


async def test_an_async_handler_succeeds(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    seen: list[Any] = []

    @app.operation("copy", input=Copy)
    async def copy(ctx: Context, data: Copy) -> dict[str, str]:
        seen.append(data)
        ctx.log("copying")
        ctx.add_resource("file", "CREATED", f"{data.source}.copy")
        ctx.set_resource_location(f"{data.source}.copy")
        return {"copied": data.source}

    op = await submit("copy", {"source": "/a"})
    worker = make_worker()
    await worker.start()
    done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED
    assert done.result == {"copied": "/a"}
    assert done.resource_location == "/a.copy"
    assert done.resources[0].identifier == "/a.copy"
    assert done.percent_complete == 100
    assert "copying" in [entry.message for entry in done.logs]
    assert seen == [Copy(source="/a")]
    await eventually(lambda: worker.counters.succeeded == 1 and not worker.running)
    assert worker.counters.claimed == 1


async def test_a_plain_handler_runs_in_a_worker_thread(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("sync")
    def handler(ctx: Context, data: dict[str, Any]) -> str:
        return threading.current_thread().name

    op = await submit("sync")
    async with make_worker():
        done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED
    assert done.result.startswith("longrun-handler")


async def test_warnings_end_succeeded_with_warnings(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("warn")
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        ctx.warn("one file was locked")

    op = await submit("warn")
    await make_worker().start()
    done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED_WITH_WARNINGS
    assert [(e.level, e.message) for e in done.logs if e.level is LogLevel.WARNING] == [
        (LogLevel.WARNING, "one file was locked")
    ]


async def test_operation_error_fails_with_its_structure(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("full")
    def handler(ctx: Context, data: dict[str, Any]) -> None:
        raise OperationError("DiskFull", "no space left", target="target", details=[{"code": "X"}])

    op = await submit("full")
    worker = make_worker()
    await worker.start()
    done = await final(store, op.id)
    assert done.status is Status.FAILED
    error = done.errors[-1]
    assert (error.code, error.message, error.target) == ("DiskFull", "no space left", "target")
    assert error.details == [{"code": "X"}]
    assert error.timestamp is not None
    await eventually(lambda: worker.counters.failed == 1)


async def test_a_plain_exception_is_a_handler_error(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("boom")
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        raise KeyError("missing")

    op = await submit("boom")
    await make_worker().start()
    done = await final(store, op.id)
    assert done.status is Status.FAILED
    assert done.errors[-1].code == "HandlerError"
    assert done.errors[-1].message == "KeyError: 'missing'"
    assert done.errors[-1].details == [{"code": "ExceptionType", "message": "builtins.KeyError"}]
    assert done.logs[-1].level is LogLevel.ERROR


async def test_invalid_stored_input_fails_without_running(
    app: App, make_worker: MakeWorker, store: Store
) -> None:
    ran: list[Any] = []
    app.operation("copy", input=Copy)(lambda ctx, data: ran.append(data))
    now = SystemClock().now()
    bad = Operation(
        id=new_id(),
        operation_type="copy",
        compartment_id="c1",
        status=Status.ACCEPTED,
        input={"nope": 1},
        time_accepted=now,
        last_action_time=now,
    )
    await store.submit(NewOperation(bad))
    await make_worker().start()
    done = await final(store, bad.id)
    assert done.status is Status.FAILED and done.errors[-1].code == "InvalidInput"
    assert ran == []


async def test_retryable_error_then_success(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("flaky", max_attempts=3, retry_backoff=0)
    async def handler(ctx: Context, data: dict[str, Any]) -> int:
        if ctx.attempt == 1:
            raise RetryableError("the target is busy")
        return ctx.attempt

    op = await submit("flaky")
    worker = make_worker()
    await worker.start()
    done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED
    assert done.result == 2 and done.attempt == 2
    assert any("the target is busy" in e.message for e in done.logs)
    await eventually(lambda: worker.counters.retried == 1 and worker.counters.succeeded == 1)


async def test_retries_spent_fail_with_retryable_error(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    @app.operation("flaky", max_attempts=2, retry_backoff=0)
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        raise RetryableError(f"busy on attempt {ctx.attempt}")

    op = await submit("flaky")
    await make_worker().start()
    done = await final(store, op.id)
    assert done.status is Status.FAILED
    assert done.attempt == 2
    assert (done.errors[-1].code, done.errors[-1].message) == (
        "RetryableError",
        "busy on attempt 2",
    )


async def test_progress_is_visible_while_running(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    finish = asyncio.Event()

    @app.operation("copy")
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        for i in range(1, 9):
            ctx.progress(bytes_done=i * 100, bytes_total=1000, phase="copy")
            await ctx.sleep(0.03)
        ctx.progress(5)  # lower than before: ignored
        ctx.log("reported a lower percent")
        await finish.wait()

    op = await submit("copy")
    await make_worker().start()
    observed: list[float] = []

    async def copied_most() -> Operation | None:
        current = await store.get(op.id)
        assert current is not None
        observed.append(current.percent_complete)
        return current if current.percent_complete >= 80 else None

    running = await eventually(copied_most)
    assert running.status is Status.IN_PROGRESS
    assert running.progress.bytes_done == 800 and running.progress.bytes_total == 1000
    assert running.progress.properties == {"phase": "copy"}
    assert running.estimated_completion_time is not None
    assert running.estimated_completion_time > running.time_started
    assert observed == sorted(observed) and observed[-1] == 80

    async def lowered() -> Operation | None:
        current = await store.get(op.id)
        assert current is not None
        return current if "reported a lower percent" in [e.message for e in current.logs] else None

    assert (await eventually(lowered)).percent_complete == 80
    finish.set()
    assert (await final(store, op.id)).percent_complete == 100


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


async def test_slots_bound_the_operations_in_flight(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    go = asyncio.Event()
    peak = 0

    @app.operation("hold")
    async def handler(ctx: Context, data: dict[str, Any]) -> None:
        nonlocal peak
        peak = max(peak, len(worker.running))
        await go.wait()

    ops = [await submit("hold") for _ in range(5)]
    worker = make_worker(slots=2)
    await worker.start()
    await eventually(lambda: len(worker.running) == 2)
    go.set()
    for op in ops:
        assert (await final(store, op.id)).status is Status.SUCCEEDED
    assert peak == 2 and worker.counters.claimed == 5


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


async def test_stop_requeues_what_is_still_running(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store, release: threading.Event
) -> None:
    @app.operation("job", max_attempts=2)
    def handler(ctx: Context, data: dict[str, Any]) -> int:
        if ctx.attempt == 1:
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
    assert (requeued.status, requeued.attempt) == (Status.ACCEPTED, 2)
    assert any("worker shutting down" in e.message for e in requeued.logs)
    async with make_worker():
        done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED and done.result == 2


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


async def test_bad_settings_are_refused(store: Store, app: App) -> None:
    with pytest.raises(ConfigurationError):
        Worker(store, app, slots=0)
    with pytest.raises(ConfigurationError):
        Worker(store, app, lease_seconds=0)
