"""SQLite batched worker writes: a pass of heartbeats in one job, one attempt's finish, and a
burst of finishes merged into one UPDATE … FROM VALUES."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from longrun.model import IllegalTransition, LeaseLost, Status
from longrun.store import sqlite_sql as q
from longrun.store.base import Beat, Outcome
from longrun.store.sqlite_conn import Mergeable, run_job
from longrun.store.sqlite_sql import finish_params, update_params

__all__ = ["MergedFinish", "finish_job", "heartbeats_job", "returned"]


def heartbeats_job(
    beats: Sequence[Beat], lease_expires: int | None, now: int | None
) -> Callable[[sqlite3.Connection], list[Status | Exception]]:
    """The writes of a pass of heartbeats, in order: each answer is the status, or LeaseLost
    where the fence found another lease (that row is left as it was)."""

    def job(conn: sqlite3.Connection) -> list[Status | Exception]:
        answers: list[Status | Exception] = []
        for beat in beats:
            fence = {"id": beat.op_id, "lease_id": beat.lease_id, "lease_expires": lease_expires}
            if beat.update.is_empty:
                row = conn.execute(q.RENEW_STATUS, fence).fetchone()
            else:
                params = {**fence, **update_params(beat.update), "now": now}
                row = conn.execute(q.HEARTBEAT, params).fetchone()
            if row is None:
                message = f"lease {beat.lease_id} on {beat.op_id} is no longer current"
                answers.append(LeaseLost(message, target=beat.op_id))
            else:
                answers.append(Status(row[0]))
        return answers

    return job


def finish_job(
    op_id: str, lease_id: str, now: datetime, outcome: Outcome, fast_sql: str, sql: str
) -> Callable[[sqlite3.Connection], Any]:
    """The write of one finish (``fast_sql`` while IN_PROGRESS, ``sql`` from what the fence
    finds); its only write is its last statement, so it needs no savepoint."""

    def job(conn: sqlite3.Connection) -> Any:
        with contextlib.suppress(IllegalTransition):  # one statement when nobody canceled
            fast = finish_params(Status.IN_PROGRESS, op_id, lease_id, now, outcome)
            row = conn.execute(fast_sql, fast).fetchone()
            if row is not None:
                return row
        fenced = conn.execute(q.GET_FENCED, {"id": op_id, "lease_id": lease_id}).fetchone()
        if fenced is None:
            raise LeaseLost(f"lease {lease_id} on {op_id} is no longer current", target=op_id)
        params = finish_params(Status(fenced["status"]), op_id, lease_id, now, outcome)
        return conn.execute(sql, params).fetchone()

    return job


def returned(row: sqlite3.Row) -> tuple[dict[str, Any], list[str]]:
    """A row RETURNING its children's ids as ``child_ids``, and those ids (sorted here:
    group_concat's order is not promised)."""
    ids = row["child_ids"]
    return dict(row), sorted(ids.split(",")) if ids else []


_COLUMNS = (
    "id", "lease_id", "status", "now", "time_finished", "percent", "progress",
    "resource_location", "result", "logs", "errors", "resources",
)  # fmt: skip
_MARKS = f"({', '.join('?' * len(_COLUMNS))})"


def _append(column: str) -> str:
    """operations.<column> with the JSON array text v.<column> appended (as rows.append_sql)."""
    mine, new = f"operations.{column}", f"v.{column}"
    return (
        f"CASE WHEN {new} IS NULL THEN {mine} WHEN {mine} = '[]' THEN {new} "
        f"ELSE substr({mine}, 1, length({mine}) - 1) || ',' || substr({new}, 2) END"
    )


# FINISH of sqlite_sql for attempts that end (no requeue) while IN_PROGRESS, for many rows: each
# row is fenced by its own lease id; a row that matches nothing takes the one-row path after.
_HEAD = f"WITH v({', '.join(_COLUMNS)}) AS (VALUES "
_TAIL = f""")
UPDATE operations SET status = v.status, last_action_time = v.now,
    version = operations.version + 1,
    time_finished = max(v.time_finished,
                        coalesce(operations.time_started, operations.time_accepted)),
    percent_complete = CASE WHEN v.percent IS NULL THEN operations.percent_complete
                            ELSE max(operations.percent_complete, v.percent) END,
    progress = coalesce(v.progress, operations.progress),
    estimated_completion_time = NULL,
    resource_location = coalesce(v.resource_location, operations.resource_location),
    result = coalesce(v.result, operations.result),
    logs = {_append("logs")}, errors = {_append("errors")}, resources = {_append("resources")},
    lease_id = NULL, lease_expires = NULL
FROM v
WHERE operations.id = v.id AND operations.lease_id = v.lease_id
  AND operations.status = 'IN_PROGRESS'
RETURNING operations.id AS id, operations.status AS status
"""


class MergedFinish(Mergeable):
    """One finish that the writer may merge with its neighbours; ``single`` is its own job,
    run instead when it cannot be merged or its row was not the one the merge matched."""

    __slots__ = ("op_id", "single", "values")
    merge_key = "finish"
    width = len(_COLUMNS)

    def __init__(
        self,
        op_id: str,
        lease_id: str,
        now: datetime,
        outcome: Outcome,
        single: Callable[[sqlite3.Connection], Any],
    ) -> None:
        self.op_id, self.single = op_id, single
        self.values: tuple[Any, ...] | None = None
        try:
            p = finish_params(Status.IN_PROGRESS, op_id, lease_id, now, outcome)
        except IllegalTransition:
            return
        if p["requeue"] == 0 and p["time_finished"] is not None:  # an end, not a retry
            self.values = tuple(p[c] for c in _COLUMNS)

    @classmethod
    def run_many(cls, conn: sqlite3.Connection, jobs: list[Any]) -> list[tuple[bool, Any]]:
        merged: dict[str, tuple[Any, tuple[Any, ...]]] = {}
        for job in jobs:  # an id twice (a retried finish): the second takes the one-row path
            if job.values is not None and job.op_id not in merged:
                merged[job.op_id] = (job, job.values)
        ended: dict[str, Any] = {}
        if len(merged) > 1:
            sql = _HEAD + ",".join([_MARKS] * len(merged)) + _TAIL
            params = [v for _, values in merged.values() for v in values]
            try:
                ended = {row["id"]: row for row in conn.execute(sql, params).fetchall()}
            except sqlite3.OperationalError:
                raise  # locked or I/O: the whole batch fails and is reported
            except sqlite3.Error:
                ended = {}  # refused as a whole (and so undone): each on its own path
        results: list[tuple[bool, Any]] = []
        for job in jobs:
            first = merged.get(job.op_id)
            row = ended.pop(job.op_id, None) if first is not None and first[0] is job else None
            results.append((True, row) if row is not None else run_job(conn, job.single, False))
        return results
