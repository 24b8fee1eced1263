"""Mapping between stored rows (snake_case columns, JSON text, integer µs) and the model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from longrun.model import LogEntry, Operation, OperationErrorInfo, Progress, Resource, Status
from longrun.model.clock import from_micros, to_micros
from longrun.model.operation import WireModel, trusted_operation
from longrun.store.base import NewOperation, Tombstone

__all__ = [
    "INSERT_COLUMNS",
    "TIME_COLUMNS",
    "append_sql",
    "dump_items",
    "insert_row",
    "insert_values",
    "micros",
    "row_to_operation",
    "row_to_tombstone",
]

TIME_COLUMNS = (
    "estimated_completion_time",
    "time_accepted",
    "time_started",
    "last_action_time",
    "time_finished",
    "not_before",
    "deadline",
)
_PLAIN_COLUMNS = (
    "id", "operation_type", "compartment_id", "resource_location", "parent_id", "attempt",
    "max_attempts", "idempotency_key", "worker_id", "version",
)  # fmt: skip
_LISTS: tuple[tuple[str, TypeAdapter[Any]], ...] = (
    ("errors", TypeAdapter(list[OperationErrorInfo])),
    ("logs", TypeAdapter(list[LogEntry])),
    ("resources", TypeAdapter(list[Resource])),
)
# what a new operation stores as its progress: read back without parsing
_DEFAULT_PROGRESS = Progress()
EMPTY_PROGRESS = _DEFAULT_PROGRESS.model_dump_json(by_alias=True)
INSERT_COLUMNS = (
    "id",
    "operation_type",
    "compartment_id",
    "status",
    "input",
    "percent_complete",
    "progress",
    "time_accepted",
    "last_action_time",
    "parent_id",
    "attempt",
    "max_attempts",
    "not_before",
    "deadline",
    "idempotency_key",
    "request_hash",
    "lost_worker_policy",
    "retry_backoff",
    "timeout",
)


def micros(value: datetime | None) -> int | None:
    """A datetime as stored (µs since the epoch), None stays None."""
    return None if value is None else to_micros(value)


def _dumps(value: Any) -> str:
    if type(value) is dict and not value:  # the input of most operations
        return "{}"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def dump_items(items: Iterable[WireModel]) -> str | None:
    """A JSON array text of wire objects, or None when there are none (nothing to append)."""
    parts = [item.model_dump_json(by_alias=True) for item in items]
    return "[" + ",".join(parts) + "]" if parts else None


def append_sql(column: str, param: str) -> str:
    """SQL that appends the JSON array text ``:param`` to the array in ``column``, without parsing.

    Our arrays are always written as canonical text, so concatenation is exact and cheap."""
    return (
        f"CASE WHEN :{param} IS NULL THEN {column} "
        f"WHEN {column} = '[]' THEN :{param} "
        f"ELSE substr({column}, 1, length({column}) - 1) || ',' || substr(:{param}, 2) END"
    )


def insert_values(new: NewOperation) -> dict[str, Any]:
    """The parameters of the INSERT of a new operation, by column name."""
    return dict(zip(INSERT_COLUMNS, insert_row(new), strict=True))


def insert_row(new: NewOperation) -> tuple[Any, ...]:
    """The parameters of the INSERT of a new operation, in INSERT_COLUMNS order."""
    op = new.operation
    return (
        op.id,
        op.operation_type,
        op.compartment_id,
        op.status.value,
        _dumps(op.input),
        op.percent_complete,
        _progress_text(op.progress),
        micros(op.time_accepted),
        micros(op.last_action_time),
        op.parent_id,
        op.attempt,
        op.max_attempts,
        micros(op.not_before),
        micros(op.deadline),
        op.idempotency_key,
        new.request_hash,
        new.lost_worker_policy.value,
        new.retry_backoff,
        new.timeout,
    )


def _progress_text(progress: Progress) -> str:
    # nothing was ever set (an assignment would be in the fields set) and no property added
    if not progress.model_fields_set and not progress.properties:
        return EMPTY_PROGRESS
    if progress == _DEFAULT_PROGRESS:
        return EMPTY_PROGRESS
    return progress.model_dump_json(by_alias=True)


def _read_progress(text: str | None) -> Progress:
    if text is None or text == EMPTY_PROGRESS:
        return Progress()
    return Progress.model_validate_json(text)


def row_to_operation(row: Any, children: Sequence[str] = ()) -> Operation:
    """The Operation of a stored row (any mapping by column name: sqlite3.Row, a dict row).

    The columns are the store's own writing, put in place unvalidated; JSON arrays and progress
    are validated from their text by pydantic's JSON parser, the empty ones not parsed at all."""
    data: dict[str, Any] = {column: row[column] for column in _PLAIN_COLUMNS}
    data["status"] = Status(row["status"])
    data["percent_complete"] = float(row["percent_complete"])
    data["children"] = list(children)
    for column in TIME_COLUMNS:
        value = row[column]
        data[column] = None if value is None else from_micros(value)
    for column in ("input", "result"):
        value = row[column]
        data[column] = None if value is None else {} if value == "{}" else json.loads(value)
    data["progress"] = _read_progress(row["progress"])
    for column, adapter in _LISTS:
        value = row[column]
        data[column] = [] if value is None or value == "[]" else adapter.validate_json(value)
    return trusted_operation(data)


def row_to_tombstone(row: Any, read_time: Callable[[Any], datetime] = from_micros) -> Tombstone:
    """The Tombstone of a stored row; ``read_time`` turns the engine's stored time into UTC."""
    return Tombstone(
        id=row["id"],
        compartment_id=row["compartment_id"],
        operation_type=row["operation_type"],
        status=Status(row["status"]),
        purged_at=read_time(row["purged_at"]),
        reason=row["reason"],
    )
