"""Resource locks in PostgreSQL (mixed into PostgresStore): live while the holder's lease is."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from longrun.model import LeaseLost
from longrun.store.postgres_conn import Conn

__all__ = ["PostgresLocks"]

SERIALIZE = "SELECT pg_advisory_xact_lock(hashtext('longrun.resource_locks'))"
LIVE_HOLDERS = """
SELECT l.key, l.operation_id FROM resource_locks l
JOIN operations o ON o.id = l.operation_id AND o.lease_id = l.lease_id
WHERE o.status IN ('IN_PROGRESS', 'CANCELING')
  AND l.key = ANY(%(keys)s) AND l.operation_id <> %(op_id)s
ORDER BY l.key
"""
OWN_LEASE = "SELECT 1 FROM operations WHERE id = %(op_id)s AND lease_id = %(lease_id)s"
TAKE_LOCKS = """
INSERT INTO resource_locks (key, operation_id, lease_id, acquired_at)
SELECT k, %(op_id)s, %(lease_id)s, %(now)s FROM unnest(%(keys)s::text[]) AS k
ON CONFLICT (key) DO UPDATE SET operation_id = excluded.operation_id,
    lease_id = excluded.lease_id, acquired_at = excluded.acquired_at
"""
RELEASE_LOCKS = "DELETE FROM resource_locks WHERE operation_id = %(op_id)s"


async def _rows(conn: Conn, sql: str, params: dict[str, Any]) -> builtins.list[Any]:
    cur = await conn.execute(sql, params)
    return await cur.fetchall()


def _pair(row: Any) -> tuple[str, str]:
    if isinstance(row, dict):
        return str(row["key"]), str(row["operation_id"])
    return str(row[0]), str(row[1])


class PostgresLocks:
    """The resource-lock methods of the Store ABC over the PostgreSQL pool.

    A lock row is live only while its holder is IN_PROGRESS or CANCELING under the lease
    that took it. Takers serialize on one transaction-scoped advisory lock, so two never both
    see a key free.
    """

    _read: Callable[..., Awaitable[Any]]
    _write: Callable[..., Awaitable[Any]]

    async def acquire_locks(
        self, op_id: str, lease_id: str, keys: Sequence[str], now: datetime
    ) -> tuple[str, str] | None:
        params = {"op_id": op_id, "lease_id": lease_id, "keys": list(keys), "now": now}

        async def job(conn: Conn) -> tuple[str, str] | None:
            await conn.execute(SERIALIZE)
            if not await _rows(conn, OWN_LEASE, params):
                raise LeaseLost(target=op_id)
            held = await _rows(conn, LIVE_HOLDERS, params)
            if held:
                return _pair(held[0])
            await conn.execute(TAKE_LOCKS, params)
            return None

        result: tuple[str, str] | None = await self._write(job)
        return result

    async def lock_holders(self, keys: Sequence[str]) -> dict[str, str]:
        params = {"op_id": "", "keys": list(keys)}
        rows = await self._read(lambda c: _rows(c, LIVE_HOLDERS, params))
        return dict(_pair(row) for row in rows)

    async def release_locks(self, op_id: str) -> None:
        await self._write(lambda c: c.execute(RELEASE_LOCKS, {"op_id": op_id}), atomic=False)
