"""Drive one handler alone, without a store or a worker, and record everything it reported."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from longrun.engine.context import Context
from longrun.engine.outcome import Ending, Rules, decide
from longrun.engine.registry import Handler, OperationType
from longrun.engine.runner import is_async_handler
from longrun.model import (
    Clock,
    LogEntry,
    Operation,
    OperationErrorInfo,
    Progress,
    Resource,
    Status,
    SystemClock,
    new_id,
)

__all__ = ["RecordedRun", "RecordingContext", "arun_handler", "run_handler"]


@dataclass
class RecordedRun:
    """Everything one attempt of a handler reported, and how it ended."""

    status: Status
    result: Any = None
    resource_location: str | None = None
    percent_complete: float = 0.0
    progress: Progress = field(default_factory=Progress)
    progress_calls: list[dict[str, Any]] = field(default_factory=list)
    logs: list[LogEntry] = field(default_factory=list)
    errors: list[OperationErrorInfo] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    retry_at: datetime | None = None  # set when the attempt asked to be retried
    error: BaseException | None = None  # what the handler raised, if anything

    @property
    def messages(self) -> list[str]:
        """The log messages, in order."""
        return [entry.message for entry in self.logs]


class RecordingContext(Context):
    """A Context that also keeps each ``progress`` call and can cancel itself after N of them."""

    def __init__(
        self, operation: Operation, *, clock: Clock, cancel_after_progress: int | None = None
    ) -> None:
        super().__init__(operation, clock=clock)
        self.progress_calls: list[dict[str, Any]] = []
        self._cancel_after = cancel_after_progress

    def progress(self, percent: float | None = None, **kwargs: Any) -> None:
        call = dict(kwargs) if percent is None else {"percent": percent, **kwargs}
        self.progress_calls.append(call)
        super().progress(percent, **kwargs)
        if self._cancel_after is not None and len(self.progress_calls) >= self._cancel_after:
            self.signal_cancel()


def run_handler(
    handler: Handler | OperationType,
    input: Any = None,  # noqa: A002 - the word handlers use
    *,
    input_model: type[BaseModel] | None = None,
    attempt: int = 1,
    cancel_after_progress: int | None = None,
    clock: Clock | None = None,
) -> RecordedRun:
    """Run ``handler(ctx, input)`` to its end and return what it reported.

    ``handler`` may be an OperationType (its input model and attempts apply) or a bare handler.
    Raises InvalidInput when the input does not validate. Use ``arun_handler`` inside a loop.
    """
    coroutine = arun_handler(
        handler,
        input,
        input_model=input_model,
        attempt=attempt,
        cancel_after_progress=cancel_after_progress,
        clock=clock,
    )
    return asyncio.run(coroutine)


async def arun_handler(
    handler: Handler | OperationType,
    input: Any = None,  # noqa: A002 - the word handlers use
    *,
    input_model: type[BaseModel] | None = None,
    attempt: int = 1,
    cancel_after_progress: int | None = None,
    clock: Clock | None = None,
) -> RecordedRun:
    """``run_handler`` for code already inside an event loop; plain handlers run in a thread."""
    op_type = (
        handler
        if isinstance(handler, OperationType)
        else OperationType(name="test", handler=handler, input_model=input_model)
    )
    value = op_type.validate_input(input)
    clock = clock or SystemClock()
    ctx = RecordingContext(
        _operation(op_type, value, attempt, clock),
        clock=clock,
        cancel_after_progress=cancel_after_progress,
    )
    ending = await _call(op_type, ctx, value)
    rules = Rules(
        attempt=attempt,
        max_attempts=op_type.max_attempts,
        retry_backoff=op_type.retry_backoff,
        timeout=op_type.timeout,
        cancel_grace=op_type.cancel_grace,
    )
    outcome = decide(ctx, ending, rules, clock.now())
    ctx.detach()
    return RecordedRun(
        status=outcome.status,
        result=outcome.result,
        resource_location=outcome.resource_location,
        percent_complete=ctx.percent_complete,
        progress=outcome.progress or Progress(),
        progress_calls=ctx.progress_calls,
        logs=outcome.logs,
        errors=outcome.errors,
        resources=outcome.resources,
        warnings=list(ctx.warnings),
        retry_at=outcome.retry_at,
        error=ending.error,
    )


async def _call(op_type: OperationType, ctx: RecordingContext, value: Any) -> Ending:
    ending = Ending()
    try:
        if is_async_handler(op_type.handler):
            ending.value = await op_type.handler(ctx, value)
        else:
            ending.value = await asyncio.to_thread(op_type.handler, ctx, value)
    except (Exception, asyncio.CancelledError) as exc:
        ending.error = exc
    ending.cancel_requested = ctx.cancel_signaled
    return ending


def _operation(op_type: OperationType, value: Any, attempt: int, clock: Clock) -> Operation:
    now = clock.now()
    return Operation(
        id=new_id(),
        operation_type=op_type.name,
        compartment_id="test",
        status=Status.IN_PROGRESS,
        input=op_type.input_to_json(value),
        time_accepted=now,
        time_started=now,
        last_action_time=now,
        attempt=attempt,
        max_attempts=op_type.max_attempts,
    )
