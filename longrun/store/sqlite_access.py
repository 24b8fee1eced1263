"""API keys and the audit trail in SQLite, mixed into SQLiteStore."""

from __future__ import annotations

import builtins
import json
import sqlite3
from datetime import datetime
from typing import Any

from longrun.model import NotFound
from longrun.store.access import ApiKey, AuditRecord, audit_from_row, key_from_row
from longrun.store.rows import micros
from longrun.store.sqlite_conn import Insert, SQLiteConnections

__all__ = ["SQLiteAccess"]

INSERT_KEY = (
    "INSERT INTO api_keys (id, secret_hash, role, compartments, name, created_at, revoked_at) "
    "VALUES (:id, :secret_hash, :role, :compartments, :name, :created_at, :revoked_at)"
)
GET_KEY = "SELECT * FROM api_keys WHERE id = ?"
# a second revoke keeps the first time
REVOKE_KEY = (
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now) WHERE id = :id RETURNING *"
)
LIST_KEYS = "SELECT * FROM api_keys ORDER BY created_at, id"
_AUDIT_COLUMNS = ("id", "time", "caller", "action", "outcome", "status", "target", "compartment_id")
_AUDIT_HEAD = f"INSERT INTO audit_log ({', '.join(_AUDIT_COLUMNS)}) VALUES "
_AUDIT_MARKS = f"({', '.join('?' * len(_AUDIT_COLUMNS))})"
LIST_AUDIT = (
    "SELECT * FROM audit_log WHERE (:before IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit"
)


class SQLiteAccess:
    """The access-control methods of the Store ABC over the SQLite connections."""

    _conns: SQLiteConnections

    async def create_key(self, key: ApiKey) -> None:
        params = {
            "id": key.id,
            "secret_hash": key.secret_hash,
            "role": key.role,
            "compartments": json.dumps(list(key.compartments)),
            "name": key.name,
            "created_at": micros(key.created_at),
            "revoked_at": micros(key.revoked_at),
        }

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(INSERT_KEY, params)

        await self._conns.write(job, savepoint=False)

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._conns.read(lambda c: c.execute(GET_KEY, (key_id,)).fetchone())
        return None if row is None else key_from_row(row)

    async def revoke_key(self, key_id: str, now: datetime) -> ApiKey:
        def job(conn: sqlite3.Connection) -> Any:
            return conn.execute(REVOKE_KEY, {"id": key_id, "now": micros(now)}).fetchone()

        row = await self._conns.write(job, savepoint=False)
        if row is None:
            raise NotFound(f"no key {key_id}", target="keyId")
        return key_from_row(row)

    async def list_keys(self) -> builtins.list[ApiKey]:
        rows = await self._conns.read(lambda c: c.execute(LIST_KEYS).fetchall())
        return [key_from_row(r) for r in rows]

    async def record_audit(self, record: AuditRecord) -> None:
        params = {**record.__dict__, "time": micros(record.time)}
        # one row among the others of the same group commit, in one multi-row INSERT
        await self._conns.write_merged(
            Insert(_AUDIT_HEAD, _AUDIT_MARKS, tuple(params[c] for c in _AUDIT_COLUMNS))
        )

    async def list_audit(
        self, limit: int = 100, before_id: str | None = None
    ) -> builtins.list[AuditRecord]:
        params = {"before": before_id, "limit": limit}
        rows = await self._conns.read(lambda c: c.execute(LIST_AUDIT, params).fetchall())
        return [audit_from_row(r) for r in rows]
