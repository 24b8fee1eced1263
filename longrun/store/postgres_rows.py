"""Mapping between PostgreSQL rows (timestamptz, parsed JSON) and the model, and list queries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from longrun.model import IllegalTransition, Operation, Status, check_transition
from longrun.store import postgres_sql as q
from longrun.store.base import ListQuery, NewOperation, Outcome, Update
from longrun.store.rows import TIME_COLUMNS, dump_items, insert_values

__all__ = [
    "finish_params",
    "insert_params",
    "list_sql",
    "row_to_operation",
    "update_params",
    "utc",
]

_JSON_COLUMNS = ("input", "progress", "result", "errors", "logs", "resources")
_PLAIN_COLUMNS = (
    "id", "operation_type", "compartment_id", "percent_complete", "resource_location",
    "parent_id", "attempt", "max_attempts", "idempotency_key", "worker_id", "version",
)  # fmt: skip
_INSERT_TIMES = ("time_accepted", "last_action_time", "not_before", "deadline")


def insert_params(new: NewOperation) -> dict[str, Any]:
    """The parameters of the INSERT of a new operation (times as datetimes)."""
    op = new.operation
    return {**insert_values(new), **{c: getattr(op, c) for c in _INSERT_TIMES}}


def utc(value: datetime) -> datetime:
    """The same instant with tzinfo UTC."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def row_to_operation(row: Mapping[str, Any] | None) -> Operation:
    """The Operation of a stored row (with its ``children`` column)."""
    if row is None:  # the row was locked or fenced first: it cannot vanish inside the transaction
        raise IllegalTransition("the operation changed concurrently", target="status")
    data: dict[str, Any] = {c: row[c] for c in _PLAIN_COLUMNS}
    data["status"] = Status(row["status"])
    data["children"] = row["children"] or []
    for column in TIME_COLUMNS:
        value = row[column]
        data[column] = None if value is None else utc(value)
    for column in _JSON_COLUMNS:
        data[column] = row[column]
    return Operation.model_validate(data)


def update_params(update: Update) -> dict[str, Any]:
    """The parameters that HEARTBEAT and FINISH share."""
    return {
        "percent": update.percent_complete,
        "progress": None
        if update.progress is None
        else update.progress.model_dump_json(by_alias=True),
        "eta": update.estimated_completion_time,
        "resource_location": update.resource_location,
        "logs": dump_items(update.logs),
        "errors": dump_items(update.errors),
        "resources": dump_items(update.resources),
    }


def list_sql(query: ListQuery) -> tuple[str, dict[str, Any]]:
    """The SELECT of a list query and its parameters."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": query.limit}
    filters: list[tuple[Any, str, str]] = [
        (query.compartment_ids, "o.compartment_id = ANY(%(compartments)s::text[])", "compartments"),
        (query.statuses or None, "o.status = ANY(%(statuses)s::text[])", "statuses"),
        (query.operation_types or None, "o.operation_type = ANY(%(types)s::text[])", "types"),
        (query.parent_id, "o.parent_id = %(parent)s::text", "parent"),
        (query.accepted_after, "o.time_accepted >= %(after_t)s::timestamptz", "after_t"),
        (query.accepted_before, "o.time_accepted < %(before_t)s::timestamptz", "before_t"),
        (query.after_id, f"o.id {'<' if query.newest_first else '>'} %(cursor)s::text", "cursor"),
    ]
    for value, clause, name in filters:
        if value is not None:
            where.append(clause)
            params[name] = value
    if query.statuses:
        params["statuses"] = [Status(s).value for s in query.statuses]
    for name in ("compartments", "types"):
        if name in params:
            params[name] = list(params[name])
    order = "DESC" if query.newest_first else "ASC"
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{q.SELECT_OPERATIONS}{clause} ORDER BY o.id {order} LIMIT %(limit)s::int", params


def finish_params(current: Status, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """What FINISH writes when the attempt ends from ``current``; IllegalTransition if it cannot."""
    target = outcome.status
    retry = outcome.retry_at is not None and current is Status.IN_PROGRESS
    if outcome.retry_at is not None:
        target = Status.ACCEPTED if retry else Status.CANCELED
    check_transition(current, target)
    params = {
        **update_params(outcome),
        "status": target.value,
        "time_finished": now if target.is_terminal else None,
        "next_attempt": 1 if retry and outcome.counts_attempt else 0,
        "requeue": retry,
        "not_before": outcome.retry_at if retry else None,
        "result": None if outcome.result is None else json.dumps(outcome.result),
        "eta": None,
    }
    if target in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS):
        params["percent"] = 100.0
    return params
