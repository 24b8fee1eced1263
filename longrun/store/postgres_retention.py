"""Retention in PostgreSQL, mixed into PostgresStore: purges leave tombstones, which expire in turn."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from longrun.model.ids import id_floor
from longrun.store import postgres_sql as q
from longrun.store.base import PURGED_BY_RETENTION, PURGED_WITH_COMPARTMENT, Tombstone
from longrun.store.postgres_conn import Conn
from longrun.store.postgres_rows import utc
from longrun.store.rows import row_to_tombstone

__all__ = ["PostgresRetention"]

EXPIRE_TOMBSTONES = (
    "DELETE FROM tombstones WHERE id IN (SELECT id FROM tombstones "
    "WHERE purged_at < %(before)s ORDER BY purged_at LIMIT %(limit)s)"
)

EXPIRE_AUDIT = (
    "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log "
    "WHERE id < %(floor)s ORDER BY id LIMIT %(limit)s)"
)


class PostgresRetention:
    """The purge and tombstone methods of the Store ABC over the PostgreSQL pool."""

    _write: Callable[..., Awaitable[Any]]

    async def purge(self, finished_before: datetime, now: datetime, limit: int = 1000) -> int:
        params = {
            "cutoff": finished_before,
            "now": now,
            "limit": limit,
            "reason": PURGED_BY_RETENTION,
        }

        async def job(conn: Conn) -> int:
            cur = await conn.execute(q.PURGE, params)
            return max(cur.rowcount, 0)

        count: int = await self._write(job, atomic=False)
        return count

    async def purge_compartment(
        self, compartment_id: str, now: datetime, limit: int = 500
    ) -> builtins.list[Tombstone]:
        params = {
            "compartment_id": compartment_id,
            "now": now,
            "limit": limit,
            "reason": PURGED_WITH_COMPARTMENT,
        }

        async def job(conn: Conn) -> builtins.list[Tombstone]:
            cur = await conn.execute(q.PURGE_COMPARTMENT, params)
            return sorted((row_to_tombstone(row, utc) for row in await cur.fetchall()), key=_by_id)

        purged: builtins.list[Tombstone] = await self._write(job, atomic=False)
        return purged

    async def expire_tombstones(self, before: datetime, limit: int = 1000) -> int:
        params = {"before": before, "limit": limit}

        async def job(conn: Conn) -> int:
            cur = await conn.execute(EXPIRE_TOMBSTONES, params)
            return max(cur.rowcount, 0)

        count: int = await self._write(job, atomic=False)
        return count

    async def expire_audit(self, before: datetime, limit: int = 1000) -> int:
        params = {"floor": id_floor(before), "limit": limit}  # ids are time-ordered: the PK

        async def job(conn: Conn) -> int:
            cur = await conn.execute(EXPIRE_AUDIT, params)
            return max(cur.rowcount, 0)

        count: int = await self._write(job, atomic=False)
        return count


def _by_id(tombstone: Tombstone) -> str:
    return tombstone.id
