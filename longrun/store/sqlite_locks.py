"""Resource locks in SQLite (mixed into SQLiteStore): live only while the holder's lease is."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from longrun.model import LeaseLost
from longrun.store.rows import micros
from longrun.store.sqlite_conn import SQLiteConnections

__all__ = ["SQLiteLocks"]

# the live holders of some keys (a JSON array), other than one operation
LIVE_HOLDERS = """
SELECT l.key, l.operation_id FROM resource_locks l
JOIN operations o ON o.id = l.operation_id AND o.lease_id = l.lease_id
WHERE o.status IN ('IN_PROGRESS', 'CANCELING')
  AND l.key IN (SELECT value FROM json_each(:keys)) AND l.operation_id != :op_id
ORDER BY l.key
"""
# the taker must itself hold the lease it claims the locks under
OWN_LEASE = "SELECT 1 FROM operations WHERE id = :op_id AND lease_id = :lease_id"
TAKE_LOCKS = """
INSERT INTO resource_locks (key, operation_id, lease_id, acquired_at)
SELECT value, :op_id, :lease_id, :now FROM json_each(:keys) WHERE true
ON CONFLICT (key) DO UPDATE SET operation_id = excluded.operation_id,
    lease_id = excluded.lease_id, acquired_at = excluded.acquired_at
"""
RELEASE_LOCKS = "DELETE FROM resource_locks WHERE operation_id = ?"


class SQLiteLocks:
    """The resource-lock methods of the Store ABC over the SQLite connections.

    A lock row is live only while its holder is IN_PROGRESS or CANCELING under the lease
    that took it, so every terminal state, requeue and reaped lease releases it.
    """

    _conns: SQLiteConnections

    async def acquire_locks(
        self, op_id: str, lease_id: str, keys: Sequence[str], now: datetime
    ) -> tuple[str, str] | None:
        params = {"op_id": op_id, "lease_id": lease_id, "keys": json.dumps(list(keys))}

        def job(conn: sqlite3.Connection) -> tuple[str, str] | None:
            if conn.execute(OWN_LEASE, params).fetchone() is None:
                raise LeaseLost(target=op_id)
            held = conn.execute(LIVE_HOLDERS, params).fetchone()
            if held is not None:
                return str(held[0]), str(held[1])
            conn.execute(TAKE_LOCKS, {**params, "now": micros(now)})
            return None

        return await self._conns.write(job)

    async def lock_holders(self, keys: Sequence[str]) -> dict[str, str]:
        params = {"op_id": "", "keys": json.dumps(list(keys))}
        rows = await self._conns.read(lambda c: c.execute(LIVE_HOLDERS, params).fetchall())
        return {str(r[0]): str(r[1]) for r in rows}

    async def release_locks(self, op_id: str) -> None:
        await self._conns.write(lambda c: c.execute(RELEASE_LOCKS, (op_id,)), savepoint=False)
