"""Retention in SQLite, mixed into SQLiteStore: tombstones expire after their own horizon."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from longrun.store.rows import micros
from longrun.store.sqlite_conn import SQLiteConnections

__all__ = ["SQLiteRetention"]

EXPIRE_TOMBSTONES = (
    "DELETE FROM tombstones WHERE id IN "
    "(SELECT id FROM tombstones WHERE purged_at < :before ORDER BY purged_at LIMIT :limit)"
)


class SQLiteRetention:
    """The tombstone-expiry method of the Store ABC over the SQLite connections."""

    _conns: SQLiteConnections

    async def expire_tombstones(self, before: datetime, limit: int = 1000) -> int:
        params = {"before": micros(before), "limit": limit}

        def job(conn: sqlite3.Connection) -> int:
            return conn.execute(EXPIRE_TOMBSTONES, params).rowcount

        return await self._conns.write(job)
