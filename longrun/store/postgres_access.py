"""API keys and the audit trail in PostgreSQL, mixed into PostgresStore."""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from longrun.model import NotFound
from longrun.store.access import ApiKey, AuditRecord, audit_from_row, key_from_row
from longrun.store.postgres_conn import Conn

__all__ = ["PostgresAccess"]

T = TypeVar("T")

INSERT_KEY = (
    "INSERT INTO api_keys (id, secret_hash, role, compartments, name, created_at, revoked_at) "
    "VALUES (%(id)s, %(secret_hash)s, %(role)s, %(compartments)s::jsonb, %(name)s, "
    "%(created_at)s, %(revoked_at)s) ON CONFLICT (id) DO NOTHING"
)
GET_KEY = "SELECT * FROM api_keys WHERE id = %(id)s"
# a second revoke keeps the first time
REVOKE_KEY = (
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %(now)s) WHERE id = %(id)s RETURNING *"
)
LIST_KEYS = "SELECT * FROM api_keys ORDER BY created_at, id"
INSERT_AUDIT = (
    "INSERT INTO audit_log (id, time, caller, action, outcome, status, target, compartment_id) "
    "VALUES (%(id)s, %(time)s, %(caller)s, %(action)s, %(outcome)s, %(status)s, %(target)s, "
    "%(compartment_id)s) ON CONFLICT (id) DO NOTHING"
)
LIST_AUDIT = (
    "SELECT * FROM audit_log WHERE (%(before)s::text IS NULL OR id < %(before)s::text) "
    "ORDER BY id DESC LIMIT %(limit)s"
)


async def _one(conn: Conn, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    cur = await conn.execute(sql, params)
    return await cur.fetchone()


async def _all(conn: Conn, sql: str, params: dict[str, Any]) -> builtins.list[dict[str, Any]]:
    cur = await conn.execute(sql, params)
    return await cur.fetchall()


class PostgresAccess:
    """The access-control methods of the Store ABC over the PostgreSQL pool."""

    _read: Callable[..., Awaitable[Any]]
    _write: Callable[..., Awaitable[Any]]

    async def create_key(self, key: ApiKey) -> None:
        params = {**key.__dict__, "compartments": json.dumps(list(key.compartments))}
        await self._write(lambda c: _execute(c, INSERT_KEY, params), atomic=False)

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = await self._read(lambda c: _one(c, GET_KEY, {"id": key_id}))
        return None if row is None else key_from_row(row)

    async def revoke_key(self, key_id: str, now: datetime) -> ApiKey:
        row = await self._write(
            lambda c: _one(c, REVOKE_KEY, {"id": key_id, "now": now}), atomic=False
        )
        if row is None:
            raise NotFound(f"no key {key_id}", target="keyId")
        return key_from_row(row)

    async def list_keys(self) -> builtins.list[ApiKey]:
        rows = await self._read(lambda c: _all(c, LIST_KEYS, {}))
        return [key_from_row(r) for r in rows]

    async def record_audit(self, record: AuditRecord) -> None:
        await self._write(lambda c: _execute(c, INSERT_AUDIT, record.__dict__), atomic=False)

    async def list_audit(
        self, limit: int = 100, before_id: str | None = None
    ) -> builtins.list[AuditRecord]:
        params = {"before": before_id, "limit": limit}
        rows = await self._read(lambda c: _all(c, LIST_AUDIT, params))
        return [audit_from_row(r) for r in rows]


async def _execute(conn: Conn, sql: str, params: dict[str, Any]) -> None:
    await conn.execute(sql, params)
