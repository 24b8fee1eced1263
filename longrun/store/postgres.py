"""The PostgreSQL engine: many API servers and workers on many hosts sharing one database.

Claims take rows ``FOR UPDATE SKIP LOCKED``; a trigger NOTIFYs every committed change and each
store keeps one LISTEN connection that wakes its waiters at once; migrations run under an
advisory lock so that any number of processes may start together.
"""

from __future__ import annotations

import asyncio
import builtins
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from longrun.model import (
    IllegalTransition,
    LeaseLost,
    LogEntry,
    LogLevel,
    LostWorkerPolicy,
    NotFound,
    Operation,
    OperationErrorInfo,
    Status,
    StoreUnavailable,
    backoff_seconds,
    check_transition,
)
from longrun.store import postgres_sql as q
from longrun.store.base import (
    Beat,
    ChangePage,
    Claim,
    ListQuery,
    NewOperation,
    Outcome,
    ReapReport,
    Store,
    SubmitResult,
    Tombstone,
    Update,
)
from longrun.store.postgres_access import PostgresAccess
from longrun.store.postgres_batch import group_commit, heartbeats
from longrun.store.postgres_conn import Conn, PostgresConnections, migrate
from longrun.store.postgres_locks import PostgresLocks
from longrun.store.postgres_retention import PostgresRetention
from longrun.store.postgres_rows import (
    finish_params,
    insert_params,
    list_sql,
    row_to_operation,
    update_params,
    utc,
)
from longrun.store.postgres_webhooks import PostgresWebhooks
from longrun.store.rows import dump_items, row_to_tombstone
from longrun.store.transitions import lost_worker_decision, manual_transition

__all__ = ["PostgresStore"]

T = TypeVar("T")


class PostgresStore(PostgresAccess, PostgresWebhooks, PostgresLocks, PostgresRetention, Store):
    """Operations in one PostgreSQL database; safe for any number of processes on any hosts."""

    engine = "postgres"

    def __init__(self, url: str, *, pool_size: int = 10, timeout: float = 3.0) -> None:
        self.url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._conns: PostgresConnections | None = None
        self._changed = asyncio.Event()
        # concurrent submits and finishes share a statement (the group commit of this engine)
        self._inserts, self._finishes = group_commit(self._write)

    # lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        self._changed = asyncio.Event()
        await migrate(self.url, self._timeout)
        conns = PostgresConnections(self.url, max_size=self._pool_size, timeout=self._timeout)
        conns.on_change = self._notify
        await conns.open()
        self._conns = conns

    async def close(self) -> None:
        await self._inserts.close()
        await self._finishes.close()
        if self._conns is not None:
            await self._conns.close()
            self._conns = None

    async def schema_version(self) -> int:
        async def job(conn: Conn) -> int:
            cur = await conn.execute("SELECT max(version) AS v FROM schema_version")
            row = await cur.fetchone()
            return int(row["v"]) if row else 0

        return await self._read(job)

    # submit and manual transitions -----------------------------------------------------------
    async def submit(self, new: NewOperation) -> SubmitResult:
        op = new.operation
        values = insert_params(new)

        if await self._inserts(values):  # the common case: a new row, inserted with others
            return SubmitResult(op, True, new.request_hash)

        async def job(conn: Conn) -> SubmitResult:  # taken, or an insert whose reply was lost
            while True:  # a holder of the key deleted between the two statements: insert again
                if await _fetchone(conn, q.INSERT, values) is not None:
                    return SubmitResult(op, True, new.request_hash)
                if await _fetchone(conn, q.OWN_INSERT, values) is not None:  # a retried insert
                    return SubmitResult(op, True, new.request_hash)
                row = await _fetchone(conn, q.IDEMPOTENT_LOOKUP, values)
                if row is not None:
                    return SubmitResult(row_to_operation(row), False, row["request_hash"])

        return await self._write(job, atomic=False)

    async def request_cancel(self, op_id: str, now: datetime) -> Operation:
        return await self._manual(op_id, now, "cancel")

    async def hold(self, op_id: str, now: datetime, reason: str | None = None) -> Operation:
        return await self._manual(op_id, now, "hold", reason)

    async def release(self, op_id: str, now: datetime) -> Operation:
        return await self._manual(op_id, now, "release")

    async def _manual(
        self, op_id: str, now: datetime, action: str, reason: str | None = None
    ) -> Operation:
        async def job(conn: Conn) -> Operation:
            current = Status((await _must_lock(conn, op_id))["status"])
            target, message = manual_transition(current, action, reason)
            if target == current:  # cancel of a CANCELING operation: nothing to change
                return row_to_operation(await _fetchone(conn, q.GET, {"id": op_id}))
            return await _set_status(conn, op_id, current, target, now, log=message)

        return await self._write(job)

    async def delete(self, op_id: str, now: datetime) -> None:
        async def job(conn: Conn) -> None:
            row = await _must_lock(conn, op_id)
            if not Status(row["status"]).is_terminal:
                raise IllegalTransition(
                    f"operation {op_id} is {row['status']}; only a terminal operation can be deleted",
                    target="status",
                )
            await conn.execute(
                q.DELETE_TO_TOMBSTONE, {"id": op_id, "now": now, "reason": "deleted"}
            )

        await self._write(job)

    # reads -----------------------------------------------------------------------------------
    async def get(self, op_id: str) -> Operation | None:
        async def job(conn: Conn) -> Operation | None:
            row = await _fetchone(conn, q.GET, {"id": op_id})
            return None if row is None else row_to_operation(row)

        return await self._read(job)

    async def get_tombstone(self, op_id: str) -> Tombstone | None:
        async def job(conn: Conn) -> Tombstone | None:
            row = await _fetchone(conn, q.GET_TOMBSTONE, {"id": op_id})
            return None if row is None else row_to_tombstone(row, utc)

        return await self._read(job)

    async def list(self, query: ListQuery) -> builtins.list[Operation]:
        if query.compartment_ids is not None and not query.compartment_ids:
            return []
        sql, params = list_sql(query)

        async def job(conn: Conn) -> builtins.list[Operation]:
            cur = await conn.execute(sql, params)
            return [row_to_operation(r) for r in await cur.fetchall()]

        return await self._read(job)

    # the worker ------------------------------------------------------------------------------
    async def claim(
        self,
        worker_id: str,
        operation_types: Sequence[str],
        now: datetime,
        lease_seconds: float,
        limit: int,
    ) -> builtins.list[Claim]:
        if not operation_types or limit < 1:
            return []
        lease_id = secrets.token_hex(8)
        expires = now + timedelta(seconds=lease_seconds)
        params = {
            "types": list(operation_types),
            "worker_id": worker_id,
            "lease_id": lease_id,
            "lease_expires": expires,
            "now": now,
            "limit": limit,
        }

        async def job(conn: Conn) -> builtins.list[Claim]:
            cur = await conn.execute(q.CLAIM, params)
            rows = sorted(await cur.fetchall(), key=lambda r: r["id"])
            return [
                Claim(row_to_operation(r), lease_id, expires, r["timeout"], r["retry_backoff"])
                for r in rows
            ]

        return await self._write(job, atomic=False)

    async def heartbeat(
        self, op_id: str, lease_id: str, now: datetime, lease_seconds: float, update: Update
    ) -> Status:
        fence = {
            "id": op_id,
            "lease_id": lease_id,
            "lease_expires": now + timedelta(seconds=lease_seconds),
        }
        if update.is_empty:
            sql, params = q.RENEW, fence
        else:
            sql, params = q.HEARTBEAT, {**fence, **update_params(update), "now": now}

        async def job(conn: Conn) -> Status:
            row = await _fetchone(conn, sql, params)
            if row is None:
                raise LeaseLost(f"lease {lease_id} on {op_id} is no longer current", target=op_id)
            return Status(row["status"])

        return await self._write(job, atomic=False)

    async def heartbeat_many(
        self, beats: Sequence[Beat], now: datetime, lease_seconds: float
    ) -> builtins.list[Status | Exception]:
        return await heartbeats(self._write, beats, now, lease_seconds)

    async def finish(self, op_id: str, lease_id: str, now: datetime, outcome: Outcome) -> Operation:
        fence = {"id": op_id, "lease_id": lease_id, "now": now}
        try:  # the common case, from IN_PROGRESS, in one statement and one round trip
            fast = {
                **fence,
                **finish_params(Status.IN_PROGRESS, outcome, now),
                "expected": "IN_PROGRESS",
            }
        except IllegalTransition:
            fast = None
        if fast is not None:
            done = await self._finishes(fast)  # with the other finishes of this moment
            if done is not None:
                return row_to_operation(done)

        async def job(conn: Conn) -> Operation:  # CANCELING, or the lease is gone: look first
            fenced = await _fetchone(conn, q.GET_FENCED, {"id": op_id, "lease_id": lease_id})
            if fenced is None:
                raise LeaseLost(f"lease {lease_id} on {op_id} is no longer current", target=op_id)
            params = {**fence, **finish_params(Status(fenced["status"]), outcome, now)}
            return row_to_operation(await _fetchone(conn, q.FINISH, {**params, "expected": None}))

        return await self._write(job)

    async def changed_since(self, since: datetime, limit: int = 500) -> builtins.list[Operation]:
        async def job(conn: Conn) -> builtins.list[Operation]:
            cur = await conn.execute(q.CHANGED_SINCE, {"since": since, "limit": limit})
            return [row_to_operation(r) for r in await cur.fetchall()]

        return await self._read(job)

    async def changes_since(
        self, since: datetime, limit: int, known: Mapping[str, int]
    ) -> ChangePage:
        async def job(conn: Conn) -> ChangePage:
            cur = await conn.execute(q.CHANGED_SINCE, {"since": since, "limit": limit})
            rows = await cur.fetchall()
            fresh = [row_to_operation(r) for r in rows if known.get(r["id"], -1) < r["version"]]
            return ChangePage(fresh, len(rows), rows[-1]["last_action_time"] if rows else None)

        return await self._read(job)

    # housekeeping ----------------------------------------------------------------------------
    async def reap(self, now: datetime) -> ReapReport:
        async def job(conn: Conn) -> ReapReport:
            report = ReapReport()
            cur = await conn.execute(q.EXPIRED_LEASES, {"now": now})
            for row in await cur.fetchall():
                await _reap_one(conn, row, now, report)
            entry = LogEntry(
                timestamp=now,
                level=LogLevel.WARNING,
                message="deadline passed before the operation started",
            )
            cur = await conn.execute(q.MARK_MISSED, {"now": now, "logs": dump_items([entry])})
            report.missed.extend(r["id"] for r in await cur.fetchall())
            return report

        return await self._write(job)

    # change notifications --------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=max(0.0, timeout))
            return True
        except TimeoutError:
            return False

    # plumbing --------------------------------------------------------------------------------
    def _connections(self) -> PostgresConnections:
        if self._conns is None:
            raise StoreUnavailable("the PostgreSQL store is not open (or already closed)")
        return self._conns

    async def _read(self, job: Callable[[Conn], Awaitable[T]]) -> T:
        return await self._connections().run(job, atomic=False)

    async def _write(self, job: Callable[[Conn], Awaitable[T]], *, atomic: bool = True) -> T:
        result = await self._connections().run(job, atomic=atomic)
        self._notify()  # our own waiters need not wait for the NOTIFY's round trip
        return result


async def _fetchone(conn: Conn, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    cur = await conn.execute(sql, params)
    return await cur.fetchone()


async def _must_lock(conn: Conn, op_id: str) -> dict[str, Any]:
    row = await _fetchone(conn, q.GET_FOR_UPDATE, {"id": op_id})
    if row is None:
        raise NotFound(f"no operation {op_id}", target="id")
    return row


async def _set_status(
    conn: Conn,
    op_id: str,
    current: Status,
    target: Status,
    now: datetime,
    *,
    log: str | None = None,
    level: LogLevel = LogLevel.INFO,
    error: OperationErrorInfo | None = None,
    retry_at: datetime | None = None,
    clear_lease: bool = False,
) -> Operation:
    check_transition(current, target)
    params = {
        "id": op_id,
        "expected": current.value,
        "status": target.value,
        "now": now,
        "time_finished": now if target.is_terminal else None,
        "requeue": retry_at is not None,
        "not_before": retry_at,
        "logs": dump_items([LogEntry(timestamp=now, level=level, message=log)]) if log else None,
        "errors": dump_items([error]) if error else None,
        "clear_lease": clear_lease or target.is_terminal,
    }
    return row_to_operation(await _fetchone(conn, q.SET_STATUS, params))


async def _reap_one(conn: Conn, row: Mapping[str, Any], now: datetime, report: ReapReport) -> None:
    current = Status(row["status"])
    decision = lost_worker_decision(
        current,
        row["attempt"],
        row["max_attempts"],
        LostWorkerPolicy(row["lost_worker_policy"]),
        row["worker_id"],
    )
    retry_at = now + timedelta(seconds=backoff_seconds(row["retry_backoff"], row["attempt"]))
    await _set_status(
        conn,
        row["id"],
        current,
        decision.status,
        now,
        log=decision.message,
        level=LogLevel.WARNING,
        error=decision.error,
        retry_at=retry_at if decision.status is Status.ACCEPTED else None,
        clear_lease=True,
    )
    getattr(report, decision.report).append(row["id"])
