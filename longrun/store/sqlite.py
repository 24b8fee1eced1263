"""The SQLite engine: one file, WAL, a group-committing writer thread and a few readers."""

from __future__ import annotations

import asyncio
import builtins
import secrets
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from longrun.model import (
    IllegalTransition,
    LogEntry,
    LogLevel,
    LostWorkerPolicy,
    NotFound,
    Operation,
    OperationErrorInfo,
    Status,
    backoff_seconds,
    check_transition,
)
from longrun.store import sqlite_sql as q
from longrun.store.base import (
    Beat,
    Claim,
    ListQuery,
    NewOperation,
    Outcome,
    ReapReport,
    Store,
    StoreStats,
    SubmitResult,
    Tombstone,
    Update,
)
from longrun.store.rows import (
    dump_items,
    insert_row,
    insert_values,
    micros,
    row_to_operation,
    row_to_tombstone,
)
from longrun.store.sqlite_access import SQLiteAccess
from longrun.store.sqlite_batch import MergedFinish, finish_job, heartbeats_job, returned
from longrun.store.sqlite_changes import ChangeSignal
from longrun.store.sqlite_conn import Insert, SQLiteConnections, migrate
from longrun.store.sqlite_feed import SQLiteFeed
from longrun.store.sqlite_locks import SQLiteLocks
from longrun.store.sqlite_retention import SQLiteRetention
from longrun.store.sqlite_sql import list_sql
from longrun.store.sqlite_webhooks import SQLiteWebhooks
from longrun.store.transitions import lost_worker_decision, manual_transition

__all__ = ["SQLiteStore"]

RawOperation = tuple[dict[str, Any], list[str]]  # a row and its children's ids, not yet a model


def _raw(conn: sqlite3.Connection, row: sqlite3.Row) -> RawOperation:
    return dict(row), [r[0] for r in conn.execute(q.CHILDREN, (row["id"],))]


class SQLiteStore(SQLiteAccess, SQLiteFeed, SQLiteWebhooks, SQLiteLocks, SQLiteRetention, Store):
    """Operations in one SQLite file; safe for several processes on one host."""

    engine = "sqlite"

    def __init__(
        self, path: str | Path, *, change_poll_interval: float = 0.02, synchronous: str = "NORMAL"
    ) -> None:
        """``synchronous``: NORMAL (the default) or FULL, which syncs the WAL at every commit."""
        self.path = str(path)
        self.synchronous = synchronous
        self._changes = ChangeSignal(self.path, change_poll_interval)
        self._conns = self._new_connections()

    # lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(migrate, self.path)
        self._changes.open()
        self._conns = self._new_connections()
        self._conns.start()

    def _new_connections(self) -> SQLiteConnections:
        conns = SQLiteConnections(self.path, synchronous=self.synchronous)
        conns.on_commit = self._changes.notify
        return conns

    async def close(self) -> None:
        self._changes.close()
        await asyncio.to_thread(self._conns.close)

    async def schema_version(self) -> int:
        row = await self._conns.read(
            lambda c: c.execute("SELECT max(version) FROM schema_version").fetchone()
        )
        return int(row[0])

    # submit and manual transitions -----------------------------------------------------------
    async def submit(self, new: NewOperation) -> SubmitResult:
        if new.operation.idempotency_key is None:  # nothing to look up: one row among many
            row = insert_row(new)
            await self._conns.write_merged(Insert(q.INSERT_HEAD, q.INSERT_MARKS, row))
            return SubmitResult(new.operation, True, new.request_hash)
        values = insert_values(new)

        def job(conn: sqlite3.Connection) -> SubmitResult:
            row = conn.execute(q.IDEMPOTENT_LOOKUP, values).fetchone()
            if row is not None:
                return SubmitResult(row_to_operation(row), False, row["request_hash"])
            conn.execute(q.INSERT, values)
            return SubmitResult(new.operation, True, new.request_hash)

        # its only write is its last statement (the lookup reads): no savepoint needed
        return await self._conns.write(job, savepoint=False)

    async def request_cancel(self, op_id: str, now: datetime) -> Operation:
        return await self._manual(op_id, now, "cancel")

    async def hold(self, op_id: str, now: datetime, reason: str | None = None) -> Operation:
        return await self._manual(op_id, now, "hold", reason)

    async def release(self, op_id: str, now: datetime) -> Operation:
        return await self._manual(op_id, now, "release")

    async def _manual(
        self, op_id: str, now: datetime, action: str, reason: str | None = None
    ) -> Operation:
        def job(conn: sqlite3.Connection) -> RawOperation:
            row = self._must_get(conn, op_id)
            current = Status(row["status"])
            target, message = manual_transition(current, action, reason)
            if target == current:  # cancel of a CANCELING operation: nothing to change
                return _raw(conn, row)
            return _raw(conn, self._set_status(conn, op_id, current, target, now, log=message))

        return row_to_operation(*await self._conns.write(job))

    async def delete(self, op_id: str, now: datetime) -> None:
        def job(conn: sqlite3.Connection) -> None:
            row = self._must_get(conn, op_id)
            if not Status(row["status"]).is_terminal:
                raise IllegalTransition(
                    f"operation {op_id} is {row['status']}; only a terminal operation can be deleted",
                    target="status",
                )
            self._tombstone(conn, row, now, "deleted")

        await self._conns.write(job)

    # reads -----------------------------------------------------------------------------------
    async def get(self, op_id: str) -> Operation | None:
        def job(conn: sqlite3.Connection) -> Operation | None:
            row = conn.execute(q.GET, (op_id,)).fetchone()
            return None if row is None else self._with_children(conn, row)

        return await self._conns.read_here(job)

    async def get_tombstone(self, op_id: str) -> Tombstone | None:
        row = await self._conns.read_here(lambda c: c.execute(q.GET_TOMBSTONE, (op_id,)).fetchone())
        return None if row is None else row_to_tombstone(row)

    async def list(self, query: ListQuery) -> list[Operation]:
        if query.compartment_ids is not None and not query.compartment_ids:
            return []
        sql, params = list_sql(query)

        def job(conn: sqlite3.Connection) -> list[Operation]:
            return self._all_with_children(conn, conn.execute(sql, params).fetchall())

        return await self._conns.read(job)

    async def stats(self, now: datetime) -> StoreStats:
        return await self._conns.read(lambda c: q.read_stats(c, micros(now) or 0))

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
        types = {f"t{i}": name for i, name in enumerate(operation_types)}
        sql = q.CLAIM.format(types=",".join(":" + k for k in types))
        lease_id = secrets.token_hex(8)
        expires = now + timedelta(seconds=lease_seconds)
        params = {
            **types,
            "worker_id": worker_id,
            "lease_id": lease_id,
            "lease_expires": micros(expires),
            "now": micros(now),
            "limit": limit,
        }

        def job(conn: sqlite3.Connection) -> builtins.list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

        # one statement: nothing to roll back alone, so no savepoint
        rows = sorted(await self._conns.write(job, savepoint=False), key=lambda r: r["id"])
        # rows become models here, on the loop, not on the writer thread that holds the lock
        return [
            Claim(row_to_operation(r), lease_id, expires, r["timeout"], r["retry_backoff"])
            for r in rows
        ]

    async def heartbeat(
        self, op_id: str, lease_id: str, now: datetime, lease_seconds: float, update: Update
    ) -> Status:
        # the batch's job with one beat: one statement, so no savepoint is needed
        expires = micros(now + timedelta(seconds=lease_seconds))
        job = heartbeats_job([Beat(op_id, lease_id, update)], expires, micros(now))
        [answer] = await self._conns.write(job, savepoint=False)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def heartbeat_many(
        self, beats: Sequence[Beat], now: datetime, lease_seconds: float
    ) -> builtins.list[Status | Exception]:
        job = heartbeats_job(beats, micros(now + timedelta(seconds=lease_seconds)), micros(now))
        # one job: the beats commit together, or none does (the savepoint) and each is retried
        try:
            return await self._conns.write(job)
        except Exception as exc:
            return [exc] * len(beats)

    async def finish(self, op_id: str, lease_id: str, now: datetime, outcome: Outcome) -> Operation:
        job = finish_job(op_id, lease_id, now, outcome, q.FINISH_IN_PROGRESS, q.FINISH)
        return row_to_operation(*returned(await self._conns.write(job, savepoint=False)))

    async def finish_status(
        self, op_id: str, lease_id: str, now: datetime, outcome: Outcome
    ) -> Status:
        sqls = (q.FINISH_STATUS_IN_PROGRESS, q.FINISH_STATUS)
        single = finish_job(op_id, lease_id, now, outcome, *sqls)
        # a burst of finishes becomes one statement; each row stays fenced by its lease
        merged = MergedFinish(op_id, lease_id, now, outcome, single)
        return Status((await self._conns.write_merged(merged))["status"])

    # housekeeping ----------------------------------------------------------------------------
    async def reap(self, now: datetime) -> ReapReport:
        at = micros(now)

        def due(conn: sqlite3.Connection) -> bool:
            lease = conn.execute(
                "SELECT 1 FROM operations WHERE lease_expires IS NOT NULL AND lease_expires < ? LIMIT 1",
                (at,),
            ).fetchone()
            missed = conn.execute(
                "SELECT 1 FROM operations WHERE deadline IS NOT NULL AND deadline <= ?"
                " AND status IN ('ACCEPTED', 'ON_HOLD') LIMIT 1",
                (at,),
            ).fetchone()
            return lease is not None or missed is not None

        if not await self._conns.read(due):  # most passes find nothing: take no write lock
            return ReapReport()
        return await self._conns.write(lambda conn: self._reap(conn, now))

    def _reap(self, conn: sqlite3.Connection, now: datetime) -> ReapReport:
        report = ReapReport()
        for row in conn.execute(q.EXPIRED_LEASES, {"now": micros(now)}).fetchall():
            decision = lost_worker_decision(
                Status(row["status"]),
                row["attempt"],
                row["max_attempts"],
                LostWorkerPolicy(row["lost_worker_policy"]),
                row["worker_id"],
            )
            retry_at = now + timedelta(
                seconds=backoff_seconds(row["retry_backoff"], row["attempt"])
            )
            self._set_status(
                conn,
                row["id"],
                Status(row["status"]),
                decision.status,
                now,
                log=decision.message,
                level=LogLevel.WARNING,
                error=decision.error,
                retry_at=retry_at if decision.status is Status.ACCEPTED else None,
                clear_lease=True,
            )
            getattr(report, decision.report).append(row["id"])
        log = dump_items(
            [
                LogEntry(
                    timestamp=now,
                    level=LogLevel.WARNING,
                    message="deadline passed before the operation started",
                )
            ]
        )
        for row in conn.execute(q.MARK_MISSED, {"now": micros(now), "logs": log}).fetchall():
            report.missed.append(row["id"])
        return report

    # change notifications --------------------------------------------------------------------
    async def wait_for_change(self, timeout: float) -> bool:
        return await self._changes.wait(timeout)

    # helpers (run on the writer or a reader thread) --------------------------------------------
    @staticmethod
    def _must_get(conn: sqlite3.Connection, op_id: str) -> Any:
        row = conn.execute(q.GET, (op_id,)).fetchone()
        if row is None:
            raise NotFound(f"no operation {op_id}", target="id")
        return row

    @staticmethod
    def _with_children(conn: sqlite3.Connection, row: sqlite3.Row) -> Operation:
        return row_to_operation(*_raw(conn, row))

    @staticmethod
    def _set_status(
        conn: sqlite3.Connection,
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
    ) -> Any:
        check_transition(current, target)
        params = {
            "id": op_id,
            "expected": current.value,
            "status": target.value,
            "now": micros(now),
            "time_finished": micros(now) if target.is_terminal else None,
            "next_attempt": 1 if retry_at is not None else 0,
            "not_before": micros(retry_at),
            "logs": dump_items([LogEntry(timestamp=now, level=level, message=log)])
            if log
            else None,
            "errors": dump_items([error]) if error else None,
            "clear_lease": 1 if clear_lease or target.is_terminal else 0,
        }
        row = conn.execute(q.SET_STATUS, params).fetchone()
        if row is None:  # cannot happen inside the write lock, but never write blind
            raise IllegalTransition(f"operation {op_id} changed concurrently", target="status")
        return row
