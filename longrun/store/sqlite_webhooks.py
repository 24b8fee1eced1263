"""Webhook callbacks and their delivery attempts in SQLite, mixed into SQLiteStore."""

from __future__ import annotations

import builtins
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from longrun.store.rows import micros
from longrun.store.sqlite_conn import SQLiteConnections
from longrun.store.webhooks import (
    TERMINAL_STATUSES,
    Callback,
    DeliveryAttempt,
    attempt_from_row,
    callback_from_row,
)

__all__ = ["SQLiteWebhooks"]

_TERMINAL = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)

# a replayed submit keeps the first callback
INSERT_CALLBACK = (
    "INSERT INTO webhooks (operation_id, url, secret, next_attempt_at, created_at) "
    "VALUES (:operation_id, :url, :secret, :now, :now) ON CONFLICT (operation_id) DO NOTHING"
)
GET_CALLBACK = "SELECT * FROM webhooks WHERE operation_id = ?"
# due: PENDING, its time has come, no live lease, and its operation has ended
CLAIM_CALLBACKS = f"""
UPDATE webhooks SET claimed_by = :worker, lease_until = :lease_until, attempts = attempts + 1
WHERE operation_id IN (
    SELECT w.operation_id FROM webhooks w JOIN operations o ON o.id = w.operation_id
    WHERE w.state = 'PENDING' AND w.next_attempt_at <= :now
      AND (w.lease_until IS NULL OR w.lease_until < :now)
      AND o.status IN ({_TERMINAL})
    ORDER BY w.next_attempt_at LIMIT :limit)
RETURNING *
"""
# fenced: only the holder of the claim of this attempt may settle it
SETTLE_CALLBACK = (
    "UPDATE webhooks SET state = :state, next_attempt_at = :next_attempt_at, "
    "claimed_by = NULL, lease_until = NULL "
    "WHERE operation_id = :operation_id AND claimed_by = :worker AND attempts = :attempt"
)
INSERT_ATTEMPT = (
    "INSERT INTO webhook_deliveries "
    "(id, operation_id, attempt, time, url, status_code, error, duration_ms, outcome) "
    "VALUES (:id, :operation_id, :attempt, :time, :url, :status_code, :error, :duration_ms, "
    ":outcome)"
)
LIST_ATTEMPTS = "SELECT * FROM webhook_deliveries WHERE operation_id = ? ORDER BY attempt, id"


class SQLiteWebhooks:
    """The webhook methods of the Store ABC over the SQLite connections."""

    _conns: SQLiteConnections

    async def add_callback(
        self, operation_id: str, url: str, secret: str | None, now: datetime
    ) -> None:
        params = {"operation_id": operation_id, "url": url, "secret": secret, "now": micros(now)}

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(INSERT_CALLBACK, params)

        await self._conns.write(job)

    async def get_callback(self, operation_id: str) -> Callback | None:
        row = await self._conns.read(lambda c: c.execute(GET_CALLBACK, (operation_id,)).fetchone())
        return None if row is None else callback_from_row(row)

    async def claim_callbacks(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> builtins.list[Callback]:
        params = {
            "worker": worker,
            "now": micros(now),
            "lease_until": micros(now + timedelta(seconds=lease_seconds)),
            "limit": limit,
        }

        def job(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(CLAIM_CALLBACKS, params).fetchall()

        return [callback_from_row(r) for r in await self._conns.write(job)]

    async def record_delivery(
        self, worker: str, attempt: DeliveryAttempt, state: str, next_attempt_at: datetime
    ) -> bool:
        settle = {
            "state": state,
            "next_attempt_at": micros(next_attempt_at),
            "operation_id": attempt.operation_id,
            "worker": worker,
            "attempt": attempt.attempt,
        }
        row = {**attempt.__dict__, "time": micros(attempt.time)}

        def job(conn: sqlite3.Connection) -> bool:
            if conn.execute(SETTLE_CALLBACK, settle).rowcount == 0:
                return False  # the lease was lost: another process owns this attempt now
            conn.execute(INSERT_ATTEMPT, row)
            return True

        return await self._conns.write(job)

    async def list_deliveries(self, operation_id: str) -> builtins.list[DeliveryAttempt]:
        rows = await self._conns.read(
            lambda c: c.execute(LIST_ATTEMPTS, (operation_id,)).fetchall()
        )
        return [attempt_from_row(r) for r in rows]
