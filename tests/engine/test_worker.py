"""The worker against the real SQLite store: outcomes, retries, progress, slots."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import (
    ConfigurationError,
    LogLevel,
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


async def test_bad_settings_are_refused(store: Store, app: App) -> None:
    with pytest.raises(ConfigurationError):
        Worker(store, app, slots=0)
    with pytest.raises(ConfigurationError):
        Worker(store, app, lease_seconds=0)
