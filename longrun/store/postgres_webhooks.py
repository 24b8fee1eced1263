"""Webhook callbacks and their delivery attempts in PostgreSQL, mixed into PostgresStore."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from longrun.store.postgres_conn import Conn
from longrun.store.webhooks import (
    TERMINAL_STATUSES,
    Callback,
    DeliveryAttempt,
    attempt_from_row,
    callback_from_row,
)

__all__ = ["PostgresWebhooks"]

_TERMINAL = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)

# a replayed submit keeps the first callback
INSERT_CALLBACK = (
    "INSERT INTO webhooks (operation_id, url, secret, next_attempt_at, created_at) "
    "VALUES (%(operation_id)s, %(url)s, %(secret)s, %(now)s, %(now)s) "
    "ON CONFLICT (operation_id) DO NOTHING"
)
GET_CALLBACK = "SELECT * FROM webhooks WHERE operation_id = %(id)s"
# due: PENDING, its time has come, no live lease, its operation has ended; SKIP LOCKED: no waits
CLAIM_CALLBACKS = f"""
UPDATE webhooks SET claimed_by = %(worker)s, lease_until = %(lease_until)s,
    attempts = attempts + 1
WHERE operation_id IN (
    SELECT w.operation_id FROM webhooks w JOIN operations o ON o.id = w.operation_id
    WHERE w.state = 'PENDING' AND w.next_attempt_at <= %(now)s
      AND (w.lease_until IS NULL OR w.lease_until < %(now)s)
      AND o.status IN ({_TERMINAL})
    ORDER BY w.next_attempt_at LIMIT %(limit)s
    FOR UPDATE OF w SKIP LOCKED)
RETURNING *
"""
# fenced: only the holder of the claim of this attempt may settle it
SETTLE_CALLBACK = (
    "UPDATE webhooks SET state = %(state)s, next_attempt_at = %(next_attempt_at)s, "
    "claimed_by = NULL, lease_until = NULL WHERE operation_id = %(operation_id)s "
    "AND claimed_by = %(worker)s AND attempts = %(attempt)s"
)
INSERT_ATTEMPT = (
    "INSERT INTO webhook_deliveries "
    "(id, operation_id, attempt, time, url, status_code, error, duration_ms, outcome) "
    "VALUES (%(id)s, %(operation_id)s, %(attempt)s, %(time)s, %(url)s, %(status_code)s, "
    "%(error)s, %(duration_ms)s, %(outcome)s)"
)
LIST_ATTEMPTS = "SELECT * FROM webhook_deliveries WHERE operation_id = %(id)s ORDER BY attempt, id"


async def _rows(conn: Conn, sql: str, params: dict[str, Any]) -> builtins.list[dict[str, Any]]:
    cur = await conn.execute(sql, params)
    return await cur.fetchall()


class PostgresWebhooks:
    """The webhook methods of the Store ABC over the PostgreSQL pool."""

    _read: Callable[..., Awaitable[Any]]
    _write: Callable[..., Awaitable[Any]]

    async def add_callback(
        self, operation_id: str, url: str, secret: str | None, now: datetime
    ) -> None:
        params = {"operation_id": operation_id, "url": url, "secret": secret, "now": now}
        await self._write(lambda c: c.execute(INSERT_CALLBACK, params), atomic=False)

    async def get_callback(self, operation_id: str) -> Callback | None:
        rows = await self._read(lambda c: _rows(c, GET_CALLBACK, {"id": operation_id}))
        return callback_from_row(rows[0]) if rows else None

    async def claim_callbacks(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> builtins.list[Callback]:
        params = {
            "worker": worker,
            "now": now,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "limit": limit,
        }
        rows = await self._write(lambda c: _rows(c, CLAIM_CALLBACKS, params), atomic=False)
        return [callback_from_row(r) for r in rows]

    async def record_delivery(
        self, worker: str, attempt: DeliveryAttempt, state: str, next_attempt_at: datetime
    ) -> bool:
        settle = {
            "state": state,
            "next_attempt_at": next_attempt_at,
            "operation_id": attempt.operation_id,
            "worker": worker,
            "attempt": attempt.attempt,
        }

        async def job(conn: Conn) -> bool:
            cur = await conn.execute(SETTLE_CALLBACK, settle)
            if cur.rowcount == 0:
                return False  # the lease was lost: another process owns this attempt now
            await conn.execute(INSERT_ATTEMPT, dict(attempt.__dict__))
            return True

        result: bool = await self._write(job)
        return result

    async def list_deliveries(self, operation_id: str) -> builtins.list[DeliveryAttempt]:
        rows = await self._read(lambda c: _rows(c, LIST_ATTEMPTS, {"id": operation_id}))
        return [attempt_from_row(r) for r in rows]
