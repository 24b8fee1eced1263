"""The caps on a handler's logs and errors: the oldest kept, one marker, counted from the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from longrun.engine.caps import EntryCaps
from longrun.engine.context import Context
from longrun.model import (
    LogEntry,
    LogLevel,
    ManualClock,
    Operation,
    OperationErrorInfo,
    Status,
    new_id,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def _context(logs: int = 0, errors: int = 0, caps: EntryCaps | None = None) -> Context:
    op = Operation(
        id=new_id(),
        operation_type="test.op",
        compartment_id="c1",
        status=Status.IN_PROGRESS,
        time_accepted=T0,
        last_action_time=T0,
        logs=[LogEntry(timestamp=T0, level=LogLevel.INFO, message=f"old {i}") for i in range(logs)],
        errors=[OperationErrorInfo(code="Old", message=f"old {i}") for i in range(errors)],
    )
    return Context(op, clock=ManualClock(T0), caps=caps or EntryCaps(logs=3, errors=2))


def test_logs_past_the_cap_leave_the_oldest_and_one_marker() -> None:
    ctx = _context()
    for i in range(10):
        ctx.log(f"line {i}")
    update = ctx.take_update()
    assert update is not None
    messages = [e.message for e in update.logs]
    assert messages[:3] == ["line 0", "line 1", "line 2"]
    assert len(messages) == 4 and "truncated" in messages[3]
    assert update.logs[3].level is LogLevel.WARNING
    ctx.log("later")
    ctx.warn("later still")
    assert ctx.take_update() is None  # nothing more, not even a second marker
    assert ctx.has_warnings


def test_the_cap_counts_what_earlier_flushes_and_attempts_stored() -> None:
    ctx = _context(logs=2)
    for i in range(5):
        ctx.log(f"line {i}")
    update = ctx.take_update()
    assert update is not None
    assert update.logs[0].message == "line 0" and len(update.logs) == 2
    assert "truncated" in update.logs[1].message


def test_an_operation_already_truncated_gets_nothing_more() -> None:
    ctx = _context(logs=4, errors=3)  # cap + marker of each, stored by an earlier attempt
    ctx.log("again")
    ctx.add_error("Again", "again")
    assert ctx.take_update() is None
    assert ctx.error_count == 1 and ctx.has_warnings  # still reported: success has warnings


def test_errors_past_the_cap_leave_the_oldest_and_one_marker() -> None:
    ctx = _context()
    for i in range(6):
        ctx.add_error("Broken", f"error {i}", target=f"item {i}")
    update = ctx.take_update()
    assert update is not None
    assert [e.code for e in update.errors] == ["Broken", "Broken", "ErrorsTruncated"]
    assert [e.message for e in update.errors][:2] == ["error 0", "error 1"]
    assert ctx.error_count == 6


def test_a_put_back_update_does_not_count_twice() -> None:
    ctx = _context()
    ctx.log("a")
    ctx.log("b")
    update = ctx.take_update()
    assert update is not None
    ctx.put_back(update)  # the write failed: the next take carries them again
    ctx.log("c")
    ctx.log("d")
    again = ctx.take_update()
    assert again is not None
    assert [e.message for e in again.logs][:3] == ["a", "b", "c"]
    assert len(again.logs) == 4 and "truncated" in again.logs[3].message


def test_the_caps_are_at_least_one() -> None:
    with pytest.raises(ValueError):
        EntryCaps(logs=0)


def test_resources_past_the_cap_leave_the_oldest_and_one_log_line() -> None:
    ctx = _context(caps=EntryCaps(logs=10, errors=10, resources=3))
    for i in range(6):
        ctx.add_resource("operation", "DELETED", f"op-{i}")
    update = ctx.take_update()
    assert update is not None
    assert [r.identifier for r in update.resources] == ["op-0", "op-1", "op-2"]
    assert [e.message for e in update.logs] == [
        "resources truncated: this operation keeps its first 3 resources; later ones are dropped"
    ]
    assert not ctx.has_warnings  # listing fewer resources is not a warning about the work
