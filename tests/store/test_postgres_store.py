"""PostgreSQL engine specifics: NOTIFY across stores, SKIP LOCKED across pools, concurrent
migrations, healing after dropped connections, and clear errors when it cannot work."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from longrun.model import ConfigurationError, ManualClock, StoreUnavailable
from longrun.store import Store, open_store
from longrun.store.migrate import load_migrations
from tests.store.conftest import fresh_postgres_database, make_op, requires_postgres


@pytest.fixture
async def stores() -> AsyncIterator[Callable[..., Any]]:
    """Open ``n`` stores (each with its own pool and LISTEN connection) on one fresh database."""
    opened: list[Store] = []
    with fresh_postgres_database() as url:

        async def make(n: int) -> list[Store]:
            batch = [open_store(url) for _ in range(n)]
            await asyncio.gather(*(s.open() for s in batch))  # migrations race: the lock decides
            opened.extend(batch)
            return batch

        make.url = url  # type: ignore[attr-defined]
        try:
            yield make
        finally:
            for s in opened:
                await s.close()


@requires_postgres
async def test_many_processes_may_migrate_at_once(stores: Callable[..., Any]) -> None:
    many = await stores(4)
    versions = {await s.schema_version() for s in many}
    assert versions == {len(load_migrations("postgres"))}


@requires_postgres
async def test_a_waiter_on_another_store_wakes_at_once(
    stores: Callable[..., Any], clock: ManualClock
) -> None:
    a, b = await stores(2)
    for _ in range(3):
        waiter = asyncio.create_task(b.wait_for_change(10))
        await asyncio.sleep(0)  # the waiter holds the current event before the write
        started = time.monotonic()
        op = (await a.submit(make_op(clock))).operation
        assert await waiter is True
        assert time.monotonic() - started < 1.0  # NOTIFY, not the 10 s bound
        assert await b.get(op.id) is not None
    assert await b.wait_for_change(0.05) is False


@requires_postgres
async def test_claims_from_many_pools_never_overlap(
    stores: Callable[..., Any], clock: ManualClock
) -> None:
    many = await stores(3)
    for _ in range(300):
        await many[0].submit(make_op(clock))
    seen: list[str] = []

    async def drain(store: Store, name: str) -> None:
        while claims := await store.claim(name, ["test.op"], clock.now(), 30, 5):
            seen.extend(c.operation.id for c in claims)

    await asyncio.gather(*(drain(s, f"w{i}-{j}") for i, s in enumerate(many) for j in range(3)))
    assert len(seen) == 300 and len(set(seen)) == 300


@requires_postgres
async def test_the_store_heals_after_its_connections_are_killed(
    stores: Callable[..., Any], clock: ManualClock
) -> None:
    import psycopg

    a, b = await stores(2)
    op = (await a.submit(make_op(clock))).operation
    with psycopg.connect(stores.url, autocommit=True) as admin:  # type: ignore[attr-defined]
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None and killed[0] >= 4  # two pools, two LISTEN connections
    got = await a.get(op.id)  # stale connections are dropped and the job retried
    assert got is not None and got.id == op.id
    # the LISTEN connection comes back by itself: a change made through a wakes b
    deadline = time.monotonic() + 10
    while True:
        waiter = asyncio.create_task(b.wait_for_change(0.5))
        await asyncio.sleep(0)
        await a.submit(make_op(clock))
        if await waiter:
            break
        assert time.monotonic() < deadline, "the LISTEN connection did not come back"


async def test_an_unreachable_server_is_store_unavailable() -> None:
    with socket.socket() as s:  # a loopback port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = open_store(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert time.monotonic() - started < 10


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith(("psycopg", "longrun.store.postgres"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(ConfigurationError, match=r"longrun\[postgres\]"):
        open_store("postgresql://localhost/longrun")
