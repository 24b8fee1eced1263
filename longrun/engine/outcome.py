"""How an attempt ended, turned into the Outcome the store records. Pure: no I/O, no clock reads."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from longrun.engine.context import Context, OperationCancelled
from longrun.engine.family import summarize
from longrun.model import (
    LogEntry,
    LogLevel,
    LongrunError,
    OperationError,
    OperationErrorInfo,
    RetryableError,
    Status,
    backoff_seconds,
)
from longrun.store.base import Outcome, Update

__all__ = ["Ending", "Rules", "decide"]


@dataclass(frozen=True)
class Rules:
    """The rules of one attempt, from the claim and the operation type."""

    attempt: int = 1
    max_attempts: int = 1
    retry_backoff: float = 1.0
    timeout: float | None = None
    cancel_grace: float = 5.0


@dataclass
class Ending:
    """What happened to the handler: its return value or exception, and what the engine did."""

    value: Any = None
    error: BaseException | None = None
    cancel_requested: bool = False
    timed_out: bool = False
    abandoned: bool = False  # it did not stop within cancel_grace
    shutdown: bool = False  # the worker stopped before the handler did


@dataclass
class _Verdict:
    status: Status
    result: Any = None
    retry_at: datetime | None = None
    logs: list[tuple[LogLevel, str]] = field(default_factory=list)
    error: OperationErrorInfo | None = None


def decide(ctx: Context, ending: Ending, rules: Rules, now: datetime) -> Outcome:
    """The Outcome of the attempt, with the context's pending update merged in."""
    verdict = _verdict(ctx, ending, rules, now)
    update = ctx.take_update(now) or Update()
    succeeded = verdict.status in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS)
    return Outcome(
        percent_complete=update.percent_complete,
        progress=update.progress,
        logs=update.logs + [LogEntry(timestamp=now, level=lv, message=m) for lv, m in verdict.logs],
        errors=update.errors + ([verdict.error] if verdict.error else []),
        resources=update.resources,
        resource_location=ctx.resource_location if succeeded else update.resource_location,
        status=verdict.status,
        result=verdict.result,
        retry_at=verdict.retry_at,
        counts_attempt=not ending.shutdown,
    )


def _verdict(ctx: Context, ending: Ending, rules: Rules, now: datetime) -> _Verdict:
    if ending.shutdown:
        return _Verdict(Status.ACCEPTED, retry_at=now, logs=[(LogLevel.WARNING, _SHUTDOWN)])
    if ending.timed_out:
        message = f"the handler ran longer than its timeout of {rules.timeout or 0:g} s"
        if ending.abandoned:
            message += f" and did not stop within {rules.cancel_grace:g} s; it was abandoned"
        return _failed("HandlerTimeout", message, now)
    if ending.abandoned:
        message = (
            f"the handler did not stop within {rules.cancel_grace:g} s of the cancel request"
            " and was abandoned"
        )
        return _Verdict(Status.CANCELED, logs=[(LogLevel.WARNING, message)])
    if ending.error is not None:
        return _from_error(ending.error, ending, rules, now)
    return _from_return(ctx, ending, now)


_SCALARS = (str, int, float, bool)
_SHUTDOWN = "worker shutting down; the operation goes back to the queue for another worker"
_CANCELED = "canceled: the handler stopped after the cancel request"


def _failed(code: str, message: str, now: datetime, **more: Any) -> _Verdict:
    error = OperationErrorInfo(code=code, message=message, timestamp=now, **more)
    return _Verdict(Status.FAILED, logs=[(LogLevel.ERROR, f"{code}: {message}")], error=error)


def _from_error(exc: BaseException, ending: Ending, rules: Rules, now: datetime) -> _Verdict:
    if isinstance(exc, OperationCancelled | asyncio.CancelledError):
        if ending.cancel_requested:
            return _Verdict(Status.CANCELED, logs=[(LogLevel.INFO, _CANCELED)])
        return _failed("OperationCancelled", "the handler canceled itself", now)
    if isinstance(exc, RetryableError):
        if ending.cancel_requested:
            return _Verdict(Status.CANCELED, logs=[(LogLevel.INFO, _CANCELED)])
        if rules.attempt < rules.max_attempts:
            delay = backoff_seconds(rules.retry_backoff, rules.attempt)
            line = (
                f"attempt {rules.attempt} of {rules.max_attempts} failed: {exc.message};"
                f" retrying in {delay:g} s"
            )
            return _Verdict(
                Status.ACCEPTED,
                retry_at=now + timedelta(seconds=delay),
                logs=[(LogLevel.WARNING, line)],
            )
        return _failed(exc.code, exc.message, now, target=exc.target, details=exc.details)
    if isinstance(exc, OperationError | LongrunError):
        return _failed(exc.code, exc.message, now, target=exc.target, details=exc.details)
    kind = type(exc).__name__
    details = [{"code": "ExceptionType", "message": f"{type(exc).__module__}.{kind}"}]
    return _failed("HandlerError", f"{kind}: {exc}", now, details=details)


def _from_return(ctx: Context, ending: Ending, now: datetime) -> _Verdict:
    if ending.cancel_requested and ctx.cancel_observed:
        return _Verdict(Status.CANCELED, logs=[(LogLevel.INFO, _CANCELED)])
    result = ending.value if ending.value is not None else ctx.result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if result is not None and type(result) not in _SCALARS:  # a scalar is JSON already
        try:
            json.dumps(result)
        except (TypeError, ValueError) as exc:
            return _failed(
                "InvalidResult", f"the handler's result is not JSON-serializable: {exc}", now
            )
    status = Status.SUCCEEDED_WITH_WARNINGS if ctx.has_warnings else Status.SUCCEEDED
    if not ctx.child_statuses:
        return _Verdict(status, result=result)
    family, lines = summarize(ctx.child_statuses)
    if family is Status.FAILED:
        return _failed("SubOperationsFailed", "; ".join(lines), now)
    if family is Status.SUCCEEDED_WITH_WARNINGS:
        status = family
    return _Verdict(status, result=result, logs=[(LogLevel.WARNING, line) for line in lines])
