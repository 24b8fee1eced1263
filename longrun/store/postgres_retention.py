"""Retention in PostgreSQL, mixed into PostgresStore: tombstones expire after their own horizon."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from longrun.store.postgres_conn import Conn

__all__ = ["PostgresRetention"]

EXPIRE_TOMBSTONES = (
    "DELETE FROM tombstones WHERE id IN (SELECT id FROM tombstones "
    "WHERE purged_at < %(before)s ORDER BY purged_at LIMIT %(limit)s)"
)


class PostgresRetention:
    """The tombstone-expiry method of the Store ABC over the PostgreSQL pool."""

    _write: Callable[..., Awaitable[Any]]

    async def expire_tombstones(self, before: datetime, limit: int = 1000) -> int:
        params = {"before": before, "limit": limit}

        async def job(conn: Conn) -> int:
            cur = await conn.execute(EXPIRE_TOMBSTONES, params)
            return max(cur.rowcount, 0)

        count: int = await self._write(job, atomic=False)
        return count
