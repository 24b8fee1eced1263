"""The change feed in SQLite, mixed into SQLiteStore: what moved since a time, with children."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from longrun.model import Operation
from longrun.model.clock import from_micros
from longrun.store import sqlite_sql as q
from longrun.store.base import ChangePage
from longrun.store.rows import micros, row_to_operation
from longrun.store.sqlite_conn import SQLiteConnections

__all__ = ["SQLiteFeed"]

_VERSIONS_SINCE = (
    "SELECT id, version, last_action_time FROM operations WHERE last_action_time >= :since "
    "ORDER BY last_action_time, id LIMIT :limit"
)
_ROWS_BY_ID = "SELECT * FROM operations WHERE id IN"


class SQLiteFeed:
    """``changed_since`` and ``changes_since`` of the Store ABC over the SQLite connections."""

    _conns: SQLiteConnections

    async def changed_since(self, since: datetime, limit: int = 500) -> builtins.list[Operation]:
        params = {"since": micros(since), "limit": limit}
        return await self._conns.read(
            lambda c: self._all_with_children(c, c.execute(q.CHANGED_SINCE, params).fetchall())
        )

    async def changes_since(
        self, since: datetime, limit: int, known: Mapping[str, int]
    ) -> ChangePage:
        params = {"since": micros(since), "limit": limit}

        def job(c: sqlite3.Connection) -> ChangePage:
            # versions first, whole rows only for what the reader lacks: most of a sweep is known
            rows = c.execute(_VERSIONS_SINCE, params).fetchall()
            fresh = [r[0] for r in rows if known.get(r[0], -1) < r[1]]
            last = from_micros(rows[-1][2]) if rows else None
            if not fresh:
                return ChangePage([], len(rows), last)
            marks = ",".join("?" * len(fresh))
            full = c.execute(f"{_ROWS_BY_ID} ({marks}) ORDER BY last_action_time, id", fresh)
            return ChangePage(self._all_with_children(c, full.fetchall()), len(rows), last)

        return await self._conns.read(job)

    @staticmethod
    def _all_with_children(c: sqlite3.Connection, rows: Sequence[Any]) -> builtins.list[Operation]:
        conn, parents = c, [r["id"] for r in rows]
        children: dict[str, builtins.list[str]] = {}
        if parents:
            marks = ",".join("?" * len(parents))
            for child in conn.execute(
                f"SELECT parent_id, id FROM operations WHERE parent_id IN ({marks}) ORDER BY id",
                parents,
            ):
                children.setdefault(child[0], []).append(child[1])
        return [row_to_operation(r, children.get(r["id"], ())) for r in rows]
