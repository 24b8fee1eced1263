"""Retention in SQLite, mixed into SQLiteStore: purges leave tombstones, which expire in turn."""

from __future__ import annotations

import builtins
import sqlite3
from datetime import datetime
from typing import Any

from longrun.model.ids import id_floor
from longrun.store import sqlite_sql as q
from longrun.store.base import PURGED_BY_RETENTION, PURGED_WITH_COMPARTMENT, Tombstone
from longrun.store.rows import micros, row_to_tombstone
from longrun.store.sqlite_conn import SQLiteConnections

__all__ = ["SQLiteRetention"]

EXPIRE_TOMBSTONES = (
    "DELETE FROM tombstones WHERE id IN "
    "(SELECT id FROM tombstones WHERE purged_at < :before ORDER BY purged_at LIMIT :limit)"
)

EXPIRE_AUDIT = (
    "DELETE FROM audit_log WHERE id IN "
    "(SELECT id FROM audit_log WHERE id < :floor ORDER BY id LIMIT :limit)"
)


class SQLiteRetention:
    """The purge and tombstone methods of the Store ABC over the SQLite connections."""

    _conns: SQLiteConnections

    async def purge(self, finished_before: datetime, now: datetime, limit: int = 1000) -> int:
        params = {"cutoff": micros(finished_before), "limit": limit}
        return len(await self._purge(q.PURGE_CANDIDATES, params, now, PURGED_BY_RETENTION))

    async def purge_compartment(
        self, compartment_id: str, now: datetime, limit: int = 500
    ) -> builtins.list[Tombstone]:
        params = {"compartment_id": compartment_id, "limit": limit}
        return await self._purge(
            q.COMPARTMENT_PURGE_CANDIDATES, params, now, PURGED_WITH_COMPARTMENT
        )

    async def _purge(
        self, candidates: str, params: dict[str, Any], now: datetime, reason: str
    ) -> builtins.list[Tombstone]:
        def job(conn: sqlite3.Connection) -> builtins.list[dict[str, Any]]:
            rows = conn.execute(candidates, params).fetchall()
            for row in rows:
                self._tombstone(conn, row, now, reason)
            return [dict(row) for row in rows]

        stamp = {"purged_at": micros(now), "reason": reason}
        # tombstones are built here, on the loop, not on the writer thread that holds the lock
        return [row_to_tombstone({**row, **stamp}) for row in await self._conns.write(job)]

    async def expire_tombstones(self, before: datetime, limit: int = 1000) -> int:
        params = {"before": micros(before), "limit": limit}

        def job(conn: sqlite3.Connection) -> int:
            return conn.execute(EXPIRE_TOMBSTONES, params).rowcount

        return await self._conns.write(job)

    async def expire_audit(self, before: datetime, limit: int = 1000) -> int:
        params = {"floor": id_floor(before), "limit": limit}  # ids are time-ordered: the PK

        def job(conn: sqlite3.Connection) -> int:
            return conn.execute(EXPIRE_AUDIT, params).rowcount

        return await self._conns.write(job)

    @staticmethod
    def _tombstone(conn: sqlite3.Connection, row: Any, now: datetime, reason: str) -> None:
        """Replace the operation of ``row`` by its tombstone (on the writer thread)."""
        conn.execute(
            q.INSERT_TOMBSTONE,
            {
                "id": row["id"],
                "compartment_id": row["compartment_id"],
                "operation_type": row["operation_type"],
                "status": row["status"],
                "purged_at": micros(now),
                "reason": reason,
            },
        )
        conn.execute(q.DELETE, (row["id"],))
