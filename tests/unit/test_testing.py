"""longrun.testing.run_handler: one handler, alone, with a recording Context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.model import (
    InvalidInput,
    LogLevel,
    ManualClock,
    OperationError,
    RetryableError,
    Status,
)
from longrun.testing import arun_handler, run_handler

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class CopyInput(BaseModel):
    source: str
    files: int = 3


def copy(ctx: Context, data: CopyInput) -> dict[str, Any]:
    for i in range(data.files):
        ctx.progress(items_done=i + 1, items_total=data.files, current=f"{data.source}/{i}")
    ctx.add_resource("file", "CREATED", f"{data.source}.copy")
    ctx.set_resource_location(f"{data.source}.copy")
    return {"copied": data.files}


def test_a_plain_handler_succeeds_with_everything_recorded() -> None:
    run = run_handler(copy, {"source": "/data"}, input_model=CopyInput)
    assert run.status is Status.SUCCEEDED
    assert run.result == {"copied": 3}
    assert run.resource_location == "/data.copy"
    assert run.percent_complete == 100
    assert run.progress.items_done == 3 and run.progress.properties == {"current": "/data/2"}
    assert run.progress_calls[0] == {"items_done": 1, "items_total": 3, "current": "/data/0"}
    assert len(run.progress_calls) == 3
    assert run.resources[0].identifier == "/data.copy"


async def test_an_async_handler_runs_in_the_running_loop() -> None:
    async def handler(ctx: Context, data: dict[str, Any]) -> int:
        ctx.progress(50)
        await ctx.sleep(0)
        return int(data["n"]) * 2

    run = await arun_handler(handler, {"n": 21})
    assert run.status is Status.SUCCEEDED and run.result == 42
    assert run.progress_calls == [{"percent": 50}]


def test_an_operation_type_validates_input_like_the_service() -> None:
    app = App()
    app.operation("copy", input=CopyInput)(copy)
    with pytest.raises(InvalidInput):
        run_handler(app.get("copy"), {"files": 2})
    assert run_handler(app.get("copy"), {"source": "s", "files": 1}).result == {"copied": 1}


def test_warnings_make_succeeded_with_warnings() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> None:
        ctx.warn("skipped a locked file")
        ctx.set_result("partial")

    run = run_handler(handler)
    assert run.status is Status.SUCCEEDED_WITH_WARNINGS
    assert run.result == "partial"
    assert run.warnings == ["skipped a locked file"]
    assert run.logs[0].level is LogLevel.WARNING


def test_operation_error_fails_with_its_structure() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> None:
        raise OperationError("DiskFull", "no space left", target="target", details=[{"k": 1}])

    run = run_handler(handler, clock=ManualClock(T0))
    assert run.status is Status.FAILED
    error = run.errors[-1]
    assert (error.code, error.message, error.target, error.details) == (
        "DiskFull",
        "no space left",
        "target",
        [{"k": 1}],
    )
    assert error.timestamp == T0


def test_a_plain_exception_is_a_handler_error() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> None:
        raise ValueError("bad value")

    run = run_handler(handler)
    assert run.status is Status.FAILED
    assert run.errors[-1].code == "HandlerError"
    assert run.errors[-1].message == "ValueError: bad value"
    assert run.errors[-1].details == [{"code": "ExceptionType", "message": "builtins.ValueError"}]
    assert run.logs[-1].level is LogLevel.ERROR
    assert isinstance(run.error, ValueError)


def test_retryable_error_retries_while_attempts_remain() -> None:
    app = App()

    @app.operation("flaky", max_attempts=3, retry_backoff=2.0)
    def flaky(ctx: Context, data: dict[str, Any]) -> None:
        raise RetryableError("try later")

    clock = ManualClock(T0)
    first = run_handler(app.get("flaky"), attempt=2, clock=clock)
    assert first.status is Status.ACCEPTED
    assert first.retry_at == T0 + timedelta(seconds=4)
    last = run_handler(app.get("flaky"), attempt=3, clock=clock)
    assert last.status is Status.FAILED and last.errors[-1].code == "RetryableError"
    assert last.errors[-1].message == "try later"


def test_cancel_after_progress_cancels_a_cooperative_handler() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> None:
        for i in range(100):
            ctx.check_cancelled()
            ctx.progress(i)

    run = run_handler(handler, cancel_after_progress=3)
    assert run.status is Status.CANCELED
    assert len(run.progress_calls) == 3
    assert run.percent_complete == 2


def test_returning_after_seeing_the_cancel_is_canceled() -> None:
    async def handler(ctx: Context, data: dict[str, Any]) -> str:
        for i in range(100):
            if ctx.cancelled:
                return "stopped early"
            ctx.progress(i)
        return "done"

    assert run_handler(handler, cancel_after_progress=1).status is Status.CANCELED


def test_a_handler_that_never_looks_at_the_cancel_succeeds() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> str:
        ctx.progress(50)
        return "done"

    assert run_handler(handler, cancel_after_progress=1).status is Status.SUCCEEDED


def test_a_result_that_is_not_json_fails() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> object:
        return object()

    run = run_handler(handler)
    assert run.status is Status.FAILED and run.errors[-1].code == "InvalidResult"


def test_a_pydantic_result_is_dumped_to_json() -> None:
    def handler(ctx: Context, data: dict[str, Any]) -> CopyInput:
        return CopyInput(source="x")

    assert run_handler(handler).result == {"source": "x", "files": 3}
