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
            rows = c.execute(q.CHANGED_SINCE, params).fetchall()
            fresh = [r for r in rows if known.get(r["id"], -1) < r["version"]]
            last = from_micros(rows[-1]["last_action_time"]) if rows else None
            return ChangePage(self._all_with_children(c, fresh), len(rows), last)

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
