"""PostgreSQL connections: a psycopg pool that runs one transaction per job, and a listener.

Driver errors become longrun errors here and nowhere else. A job that fails on a dropped
connection before its COMMIT was sent changed nothing, so it is retried on a fresh connection:
after a server restart the pool heals itself instead of failing once per stale connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from longrun.model import ConfigurationError, InternalError, LongrunError, StoreUnavailable
from longrun.store.migrate import load_migrations
from longrun.store.postgres_sql import CHANNEL, MIGRATION_LOCK

__all__ = ["Conn", "PostgresConnections", "connect", "migrate", "translate"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = psycopg.AsyncConnection[dict[str, Any]]
_ATTEMPTS = 3


def translate(exc: BaseException) -> LongrunError:
    """The one place where driver errors become longrun errors."""
    if isinstance(exc, PoolTimeout):
        return StoreUnavailable(f"PostgreSQL: no connection available ({exc})")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | OSError):
        return StoreUnavailable(f"PostgreSQL: {exc}".strip())
    return InternalError(f"PostgreSQL: {type(exc).__name__}: {exc}")


async def connect(url: str, *, autocommit: bool, timeout: float) -> Conn:
    """One connection outside the pool (migrations, LISTEN), in UTC, rows as dicts."""
    conn = await psycopg.AsyncConnection.connect(
        url, autocommit=autocommit, row_factory=dict_row, connect_timeout=max(1, round(timeout))
    )
    await _configure(conn)
    return conn


async def _configure(conn: Conn) -> None:
    autocommit = conn.autocommit
    await conn.set_autocommit(True)
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.set_autocommit(autocommit)


async def migrate(url: str, timeout: float) -> None:
    """Bring the schema up to date; an advisory lock lets many processes start at once."""
    try:
        conn = await connect(url, autocommit=False, timeout=timeout)
        async with conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_version")
            current = (await cur.fetchone() or {"v": 0})["v"]
            migrations = load_migrations("postgres")
            if current > len(migrations):
                raise ConfigurationError(
                    f"the database has schema version {current}, newer than this longrun knows"
                )
            for migration in migrations[current:]:
                await conn.execute(migration.sql.encode())  # a whole script: no parameters
                await conn.execute(
                    "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            await conn.commit()
    except (psycopg.Error, OSError) as exc:
        raise translate(exc) from exc


async def _back_to_autocommit(conn: Conn) -> None:
    """Roll back what a failed job left open and return the connection to autocommit."""
    if conn.broken or conn.closed:
        return
    with contextlib.suppress(psycopg.Error):
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.rollback()
        await conn.set_autocommit(True)


def _is_retryable(exc: BaseException, conn: Conn | None) -> bool:
    if isinstance(exc, psycopg.errors.TransactionRollback):  # deadlock, serialization: rolled back
        return True
    return isinstance(exc, psycopg.OperationalError) and (conn is None or conn.broken)


class PostgresConnections:
    """The pool of one store, and its LISTEN connection that calls ``on_change`` on every NOTIFY."""

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 3.0
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.on_change: Callable[[], None] = lambda: None
        self._pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, round(timeout)),
            },
            configure=_configure,
            reconnect_timeout=3600.0,
            name="longrun",
        )
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def open(self) -> None:
        """Fill the pool and start listening; StoreUnavailable when the server cannot be reached."""
        try:
            await self._pool.open(wait=True, timeout=self.timeout)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            await self._pool.close()
            raise translate(exc) from exc
        self._listening = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(), name="longrun-postgres-listen")
        with contextlib.suppress(TimeoutError):  # waits are bounded anyway; do not fail open
            await asyncio.wait_for(self._listening.wait(), self.timeout)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        await self._pool.close()

    async def run(self, job: Callable[[Conn], Awaitable[T]], *, atomic: bool = True) -> T:
        """Run ``job``: in one transaction when ``atomic`` (its own LongrunError rolls it back),
        else in autocommit, where each statement commits by itself in one round trip."""
        for attempt in range(1, _ATTEMPTS + 1):
            conn: Conn | None = None
            committing = False
            try:
                async with self._pool.connection() as conn:
                    if not atomic:
                        return await job(conn)
                    await conn.set_autocommit(False)
                    try:
                        result = await job(conn)
                        committing = True
                        await conn.commit()
                    finally:
                        await _back_to_autocommit(conn)
                return result
            except LongrunError:
                raise
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                if committing or attempt == _ATTEMPTS or not _is_retryable(exc, conn):
                    raise translate(exc) from exc
                log.info("PostgreSQL job retried after %s: %s", type(exc).__name__, exc)
                if conn is not None and conn.broken:
                    with contextlib.suppress(Exception):  # drop the other stale connections
                        await self._pool.check()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _listen(self) -> None:
        """LISTEN forever; reconnect with a bounded backoff, and wake everyone after a gap."""
        delay = 0.05
        while True:
            try:
                conn = await connect(self.url, autocommit=True, timeout=self.timeout)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self.on_change()  # anything may have changed while we were not listening
                    delay = 0.05
                    async for _ in conn.notifies():
                        self.on_change()
            except (psycopg.Error, OSError) as exc:
                log.warning("PostgreSQL LISTEN connection lost (%s); reconnecting", exc)
            self.on_change()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
