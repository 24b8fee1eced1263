"""Group commit for the PostgreSQL engine: concurrent calls share one statement and one round trip.

A ``Batcher`` queues the calls made while its previous statement is in flight (or in the same turn
of the event loop) and sends them together: a lone call goes out at once, a crowd goes out as one
multi-row statement. No timer, so no added latency. The multi-row statements are derived from the
single-row ones (``%(name)s::type`` becomes a column of ``unnest(%(name)s::type[], …)``), so the
two cannot drift apart: the same SET expressions and the same fence, row by row.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from longrun.model import LeaseLost, Status, StoreUnavailable
from longrun.store import postgres_sql as q
from longrun.store.postgres_conn import Conn
from longrun.store.postgres_rows import update_params
from longrun.store.records import Beat

__all__ = ["Batcher", "columns", "group_commit", "heartbeats", "multi_insert", "multi_update"]

I = TypeVar("I")  # noqa: E741 - the conventional name of an item type
R = TypeVar("R")
T = TypeVar("T")
Write = Callable[[Callable[[Conn], Awaitable[T]]], Awaitable[T]]
Job = Callable[[Conn], Awaitable[Any]]
Row = dict[str, Any]

_PARAM = re.compile(r"%\((\w+)\)s::([a-z0-9_]+)")
_LIMIT = 500  # rows per statement


def _params(sql: str) -> list[tuple[str, str]]:
    """The (name, type) of every ``%(name)s::type`` of ``sql``, first occurrence first."""
    found: dict[str, str] = {}
    for name, sql_type in _PARAM.findall(sql):
        if found.setdefault(name, sql_type) != sql_type:
            raise ValueError(f"parameter {name} is cast to two types")
    return list(found.items())


def _unnest(params: Sequence[tuple[str, str]]) -> str:
    arrays = ", ".join(f"%({name})s::{sql_type}[]" for name, sql_type in params)
    names = ", ".join(f'"{name}"' for name, _ in params)
    return f"unnest({arrays}) AS v({names})"


def multi_update(sql: str) -> tuple[str, list[tuple[str, str]]]:
    """The many-row form of a single-row ``UPDATE … SET … WHERE …``: each parameter becomes a
    column of ``v``, joined in by a ``FROM unnest(…)``; the WHERE (the fence) applies per row."""
    params = _params(sql)
    body = _PARAM.sub(lambda m: f'v."{m.group(1)}"', sql)
    if body.count("\nWHERE ") != 1 or "\nFROM " in body:
        raise ValueError("expected one UPDATE … SET … WHERE … statement")
    return body.replace("\nWHERE ", f"\nFROM {_unnest(params)}\nWHERE ", 1), params


def multi_insert(sql: str) -> tuple[str, list[tuple[str, str]]]:
    """The many-row form of ``INSERT … VALUES (%(a)s::t, …) …``: ``SELECT * FROM unnest(…)``."""
    match = re.search(r"VALUES \((.*?)\)\s*\n", sql, re.S)
    if match is None:
        raise ValueError("expected INSERT … VALUES (…)")
    params = _params(match.group(1))
    return sql[: match.start()] + f"SELECT * FROM {_unnest(params)}\n" + sql[match.end() :], params


_COERCE: dict[str, Callable[[Any], Any]] = {"float8": float, "int": int, "bool": bool}


def columns(
    params: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]
) -> dict[str, list[Any]]:
    """One list per parameter (the arrays that ``unnest`` takes), of one element type each."""
    out: dict[str, list[Any]] = {}
    for name, sql_type in params:
        coerce = _COERCE.get(sql_type)
        values = [row[name] for row in rows]
        out[name] = values if coerce is None else [None if v is None else coerce(v) for v in values]
    return out


class Batcher(Generic[I, R]):
    """Coalesces concurrent calls into calls of ``run`` on lists (one statement in flight at a
    time). ``key`` names what one statement may not hold twice (a row id): a repeat waits for
    the next statement. A caller cancelled before its batch is sent is left out of it."""

    def __init__(
        self, run: Callable[[list[I]], Awaitable[list[R]]], key: Callable[[I], str]
    ) -> None:
        self._run = run
        self._key = key
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a store reopened on another loop starts afresh
            self._loop, self._task, self._queue = loop, None, []
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._drain(), name="longrun-postgres-batch")
        return await future

    async def close(self) -> None:
        """Cancel the statement in flight; its callers and those queued get StoreUnavailable."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._fail(self._queue, StoreUnavailable("the PostgreSQL store was closed"))
        self._queue = []

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._next()
                if not batch:
                    continue
                try:
                    results = await self._run([item for item, _ in batch])
                except asyncio.CancelledError:
                    self._fail(batch, StoreUnavailable("the PostgreSQL store was closed"))
                    raise
                except Exception as exc:
                    self._fail(batch, exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _next(self) -> list[tuple[I, asyncio.Future[R]]]:
        batch: list[tuple[I, asyncio.Future[R]]] = []
        rest: list[tuple[I, asyncio.Future[R]]] = []
        seen: set[str] = set()
        for entry in self._queue:
            if entry[1].done():  # its caller gave up before it was sent
                continue
            key = self._key(entry[0])
            if key in seen or len(batch) >= _LIMIT:
                rest.append(entry)
            else:
                seen.add(key)
                batch.append(entry)
        self._queue = rest
        return batch

    @staticmethod
    def _fail(entries: list[tuple[I, asyncio.Future[R]]], exc: BaseException) -> None:
        for _, future in entries:
            if not future.done():
                future.set_exception(exc)


def by_id(row: Mapping[str, Any]) -> str:
    """The batching key of a row of parameters: its operation id."""
    return str(row["id"])


def group_commit(
    write: Callable[..., Awaitable[Any]],
) -> tuple[Batcher[Row, bool], Batcher[Row, Row | None]]:
    """The batchers of submits and of finishes over ``write(job, atomic=False)``."""

    def autocommit(job: Job) -> Awaitable[Any]:
        return write(job, atomic=False)

    inserts: Batcher[Row, bool] = Batcher(lambda rows: insert_rows(autocommit, rows), by_id)
    finishes: Batcher[Row, Row | None] = Batcher(lambda rows: finish_rows(autocommit, rows), by_id)
    return inserts, finishes


_INSERT_MANY, _INSERT_PARAMS = multi_insert(q.INSERT)
_FINISH_MANY, _FINISH_PARAMS = multi_update(q.FINISH)


async def insert_rows(write: Write[Any], rows: list[Row]) -> list[bool]:
    """INSERT the rows in one statement; False for each row that was not inserted (taken)."""
    sql, params = (
        (q.INSERT, rows[0]) if len(rows) == 1 else (_INSERT_MANY, columns(_INSERT_PARAMS, rows))
    )

    async def job(conn: Conn) -> set[str]:
        cur = await conn.execute(sql, params)
        return {r["id"] for r in await cur.fetchall()}

    inserted = await write(job)
    return [row["id"] in inserted for row in rows]


async def finish_rows(write: Write[Any], rows: list[Row]) -> list[Row | None]:
    """FINISH the rows in one statement, each fenced by its own lease id and status; None for
    each row that its fence refused (its caller then looks at it alone)."""
    sql, params = (
        (q.FINISH, rows[0]) if len(rows) == 1 else (_FINISH_MANY, columns(_FINISH_PARAMS, rows))
    )

    async def job(conn: Conn) -> dict[str, Row]:
        cur = await conn.execute(sql, params)
        return {r["id"]: r for r in await cur.fetchall()}

    done = await write(job)
    return [done.get(row["id"]) for row in rows]


_HEARTBEAT_MANY, _HEARTBEAT_PARAMS = multi_update(q.HEARTBEAT)
_RENEW_MANY, _RENEW_PARAMS = multi_update(q.RENEW)


async def heartbeats(
    write: Write[Any], beats: Sequence[Beat], now: datetime, lease_seconds: float
) -> list[Status | Exception]:
    """A worker's pass of heartbeats in one transaction of at most two statements (the beats with
    news, the bare renewals), each row fenced by its own lease; LeaseLost where a fence held not."""
    expires = now + timedelta(seconds=lease_seconds)
    news: list[Row] = []
    bare: list[Row] = []
    for beat in beats:
        fence = {"id": beat.op_id, "lease_id": beat.lease_id, "lease_expires": expires}
        if beat.update.is_empty:
            bare.append(fence)
        else:
            news.append({**fence, **update_params(beat.update), "now": now})

    async def job(conn: Conn) -> dict[str, str]:
        found: dict[str, str] = {}
        for rows, sql, params in (
            (news, _HEARTBEAT_MANY, _HEARTBEAT_PARAMS),
            (bare, _RENEW_MANY, _RENEW_PARAMS),
        ):
            if rows:
                cur = await conn.execute(sql, columns(params, rows))
                found.update({r["id"]: r["status"] for r in await cur.fetchall()})
        return found

    try:
        found = await write(job)
    except Exception as exc:  # nothing was written: every beat is tried again
        return [exc] * len(beats)
    return [
        Status(found[beat.op_id])
        if beat.op_id in found
        else LeaseLost(
            f"lease {beat.lease_id} on {beat.op_id} is no longer current", target=beat.op_id
        )
        for beat in beats
    ]
