"""The named SQL of the SQLite engine (times in µs; JSON arrays appended as text)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from longrun.model import Status, check_transition
from longrun.model.clock import from_micros
from longrun.store.base import ListQuery, Outcome, StoreStats, Update
from longrun.store.rows import INSERT_COLUMNS, append_sql, dump_items, micros

__all__ = [
    "CHANGED_SINCE",
    "CHILDREN",
    "CHILD_IDS",
    "CLAIM",
    "COMPARTMENT_PURGE_CANDIDATES",
    "DELETE",
    "EXPIRED_LEASES",
    "FINISH",
    "FINISH_IN_PROGRESS",
    "FINISH_STATUS",
    "FINISH_STATUS_IN_PROGRESS",
    "GET",
    "GET_FENCED",
    "GET_TOMBSTONE",
    "HEARTBEAT",
    "IDEMPOTENT_LOOKUP",
    "INSERT",
    "INSERT_HEAD",
    "INSERT_MARKS",
    "INSERT_TOMBSTONE",
    "MARK_MISSED",
    "PURGE_CANDIDATES",
    "RENEW",
    "RENEW_STATUS",
    "SET_STATUS",
    "finish_params",
    "list_sql",
    "read_stats",
    "update_params",
]

INSERT = (
    f"INSERT INTO operations ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in INSERT_COLUMNS)})"
)
# the same, for rows that the writer merges into one multi-row INSERT (positional parameters)
INSERT_HEAD = f"INSERT INTO operations ({', '.join(INSERT_COLUMNS)}) VALUES "
INSERT_MARKS = f"({', '.join('?' * len(INSERT_COLUMNS))})"

IDEMPOTENT_LOOKUP = (
    "SELECT * FROM operations WHERE compartment_id = :compartment_id "
    "AND idempotency_key = :idempotency_key"
)

GET = "SELECT * FROM operations WHERE id = ?"
CHANGED_SINCE = (
    "SELECT * FROM operations WHERE last_action_time >= :since "
    "ORDER BY last_action_time, id LIMIT :limit"
)
# Metrics: counts by status and type, and the queue of what may start now.
STATS_COUNTS = "SELECT status, operation_type, count(*) FROM operations GROUP BY 1, 2"
STATS_READY = (
    "SELECT count(*), min(time_accepted) FROM operations "
    "WHERE status = 'ACCEPTED' AND (not_before IS NULL OR not_before <= :now)"
)
CHILDREN = "SELECT id FROM operations WHERE parent_id = ? ORDER BY id"
GET_TOMBSTONE = "SELECT * FROM tombstones WHERE id = ?"
GET_FENCED = "SELECT status, attempt FROM operations WHERE id = :id AND lease_id = :lease_id"

# Times come from the clock of whoever writes (an API server, a worker); clocks disagree, so a
# start is never before the acceptance and an end never before the start (or the acceptance).
_FINISHED = """CASE WHEN :time_finished IS NULL THEN {kept}
        ELSE max(:time_finished, coalesce(time_started, time_accepted)) END"""

# The ids of an operation's children, comma-separated (a RETURNING saves a second statement).
CHILD_IDS = """(SELECT group_concat(k.id) FROM (SELECT c.id FROM operations AS c
    WHERE c.parent_id = operations.id ORDER BY c.id) AS k) AS child_ids"""

# Oldest first among what may start now; the write lock of BEGIN IMMEDIATE makes it exclusive.
CLAIM_TEMPLATE = """
UPDATE operations SET status = 'IN_PROGRESS', worker_id = :worker_id, lease_id = :lease_id,
    lease_expires = :lease_expires, time_started = max(:now, time_accepted),
    last_action_time = :now, percent_complete = 0, estimated_completion_time = NULL, version = version + 1
WHERE id IN (
    SELECT id FROM operations
    WHERE status = 'ACCEPTED' AND operation_type IN ({types})
      AND (not_before IS NULL OR not_before <= :now)
      AND (deadline IS NULL OR deadline > :now)
    ORDER BY id LIMIT :limit)
RETURNING *
"""
CLAIM = CLAIM_TEMPLATE  # formatted with one placeholder per operation type

RENEW = (
    "UPDATE operations SET lease_expires = :lease_expires WHERE id = :id AND lease_id = :lease_id"
)
RENEW_STATUS = RENEW + " RETURNING status"

HEARTBEAT = f"""
UPDATE operations SET lease_expires = :lease_expires, last_action_time = :now,
    version = version + 1,
    percent_complete = CASE WHEN :percent IS NULL THEN percent_complete
                            ELSE max(percent_complete, :percent) END,
    progress = coalesce(:progress, progress),
    estimated_completion_time = coalesce(:eta, estimated_completion_time),
    resource_location = coalesce(:resource_location, resource_location),
    logs = {append_sql("logs", "logs")},
    errors = {append_sql("errors", "errors")},
    resources = {append_sql("resources", "resources")}
WHERE id = :id AND lease_id = :lease_id
RETURNING status
"""

FINISH = f"""
UPDATE operations SET status = :status, last_action_time = :now, version = version + 1,
    time_finished = {_FINISHED.format(kept="NULL")},
    attempt = attempt + :next_attempt, not_before = coalesce(:not_before, not_before),
    percent_complete = CASE WHEN :percent IS NULL THEN percent_complete
                            ELSE max(percent_complete, :percent) END,
    progress = coalesce(:progress, progress),
    estimated_completion_time = :eta,
    resource_location = coalesce(:resource_location, resource_location),
    result = coalesce(:result, result),
    logs = {append_sql("logs", "logs")},
    errors = {append_sql("errors", "errors")},
    resources = {append_sql("resources", "resources")},
    worker_id = CASE WHEN :requeue = 1 THEN NULL ELSE worker_id END,
    lease_id = NULL, lease_expires = NULL
WHERE id = :id AND lease_id = :lease_id
RETURNING *, {CHILD_IDS}
"""

# the common case, one statement: finishing an attempt that nobody asked to cancel
FINISH_IN_PROGRESS = FINISH.replace(
    "WHERE id = :id AND lease_id = :lease_id",
    "WHERE id = :id AND lease_id = :lease_id AND status = 'IN_PROGRESS'",
)
# the same two, returning the status only: the whole row costs the writer about 20 µs more
FINISH_STATUS = FINISH.replace(f"RETURNING *, {CHILD_IDS}", "RETURNING status")
FINISH_STATUS_IN_PROGRESS = FINISH_IN_PROGRESS.replace(
    f"RETURNING *, {CHILD_IDS}", "RETURNING status"
)

# A transition made by the service or the reaper (no lease to fence; the status is checked).
SET_STATUS = f"""
UPDATE operations SET status = :status, last_action_time = :now, version = version + 1,
    time_finished = {_FINISHED.format(kept="time_finished")},
    attempt = attempt + :next_attempt, not_before = CASE WHEN :next_attempt = 1
        THEN :not_before ELSE not_before END,
    percent_complete = CASE WHEN :next_attempt = 1 THEN 0 ELSE percent_complete END,
    estimated_completion_time = CASE WHEN :time_finished IS NULL AND :next_attempt = 0
        THEN estimated_completion_time ELSE NULL END,
    logs = {append_sql("logs", "logs")},
    errors = {append_sql("errors", "errors")},
    worker_id = CASE WHEN :clear_lease = 1 AND :next_attempt = 1 THEN NULL ELSE worker_id END,
    lease_id = CASE WHEN :clear_lease = 1 THEN NULL ELSE lease_id END,
    lease_expires = CASE WHEN :clear_lease = 1 THEN NULL ELSE lease_expires END
WHERE id = :id AND status = :expected
RETURNING *
"""

EXPIRED_LEASES = """
SELECT id, status, attempt, max_attempts, lost_worker_policy, retry_backoff, worker_id
FROM operations
WHERE lease_expires IS NOT NULL AND lease_expires < :now AND status IN ('IN_PROGRESS', 'CANCELING')
ORDER BY lease_expires LIMIT 500
"""

MARK_MISSED = f"""
UPDATE operations SET status = 'MISSED', time_finished = max(:now, time_accepted),
    last_action_time = :now,
    version = version + 1, logs = {append_sql("logs", "logs")}
WHERE deadline IS NOT NULL AND deadline <= :now AND status IN ('ACCEPTED', 'ON_HOLD')
RETURNING id
"""

# What a purge turns into tombstones: terminal operations, by retention or by compartment.
_TERMINAL_CANDIDATES = """
SELECT id, compartment_id, operation_type, status FROM operations
WHERE status IN ('SUCCEEDED', 'SUCCEEDED_WITH_WARNINGS', 'FAILED', 'CANCELED', 'MISSED')
"""
PURGE_CANDIDATES = (
    _TERMINAL_CANDIDATES
    + "AND time_finished IS NOT NULL AND time_finished < :cutoff ORDER BY time_finished LIMIT :limit"
)
COMPARTMENT_PURGE_CANDIDATES = (
    _TERMINAL_CANDIDATES + "AND compartment_id = :compartment_id ORDER BY id LIMIT :limit"
)

INSERT_TOMBSTONE = """
INSERT OR REPLACE INTO tombstones (id, compartment_id, operation_type, status, purged_at, reason)
VALUES (:id, :compartment_id, :operation_type, :status, :purged_at, :reason)
"""

DELETE = "DELETE FROM operations WHERE id = ?"


def update_params(update: Update) -> dict[str, Any]:
    return {
        "percent": update.percent_complete,
        "progress": None
        if update.progress is None
        else update.progress.model_dump_json(by_alias=True),
        "eta": micros(update.estimated_completion_time),
        "resource_location": update.resource_location,
        "logs": dump_items(update.logs),
        "errors": dump_items(update.errors),
        "resources": dump_items(update.resources),
    }


def list_sql(query: ListQuery) -> tuple[str, dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {"limit": query.limit}

    def among(column: str, values: Sequence[str], prefix: str) -> None:
        names = {f"{prefix}{i}": v for i, v in enumerate(values)}
        params.update(names)
        where.append(f"{column} IN ({','.join(':' + n for n in names)})")

    if query.compartment_ids is not None:
        among("compartment_id", list(query.compartment_ids), "c")
    if query.statuses:
        among("status", [Status(s).value for s in query.statuses], "s")
    if query.operation_types:
        among("operation_type", list(query.operation_types), "t")
    conditions: list[tuple[bool, str, Callable[[], Any]]] = [
        (query.parent_id is not None, "parent_id = :parent", lambda: query.parent_id),
        (
            query.accepted_after is not None,
            "time_accepted >= :after_t",
            lambda: micros(query.accepted_after),
        ),
        (
            query.accepted_before is not None,
            "time_accepted < :before_t",
            lambda: micros(query.accepted_before),
        ),
    ]
    for present, clause, value in conditions:
        if present:
            where.append(clause)
            params[clause.split(":")[1].strip()] = value()
    if query.after_id is not None:
        where.append("id < :cursor" if query.newest_first else "id > :cursor")
        params["cursor"] = query.after_id
    order = "DESC" if query.newest_first else "ASC"
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return f"SELECT * FROM operations {clause}ORDER BY id {order} LIMIT :limit", params


def read_stats(conn: sqlite3.Connection, now: int) -> StoreStats:
    """The StoreStats of the database as of ``now`` (µs)."""
    counts = {(Status(r[0]), r[1]): int(r[2]) for r in conn.execute(STATS_COUNTS)}
    ready, oldest = conn.execute(STATS_READY, {"now": now}).fetchone()
    return StoreStats(counts, int(ready), None if oldest is None else from_micros(oldest))


def finish_params(
    current: Status,
    op_id: str,
    lease_id: str,
    now: datetime,
    outcome: Outcome,
) -> dict[str, Any]:
    """The parameters of FINISH from ``current``; IllegalTransition when the outcome cannot end
    an attempt that stands at ``current``."""
    retry = outcome.retry_at is not None and current is Status.IN_PROGRESS
    target = outcome.status
    if outcome.retry_at is not None:
        target = Status.ACCEPTED if retry else Status.CANCELED
    check_transition(current, target)
    params = {
        **update_params(outcome),
        "id": op_id,
        "lease_id": lease_id,
        "now": micros(now),
        "status": target.value,
        "time_finished": micros(now) if target.is_terminal else None,
        "next_attempt": 1 if retry and outcome.counts_attempt else 0,
        "requeue": 1 if retry else 0,
        "not_before": micros(outcome.retry_at) if retry else None,
        "result": None if outcome.result is None else json.dumps(outcome.result),
        "eta": None,
    }
    if target in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS):
        params["percent"] = 100.0
    return params
