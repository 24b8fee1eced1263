"""The store fixture: every contract test runs on every engine (SQLite, and PostgreSQL when
LONGRUN_TEST_POSTGRES names a server: each test gets a fresh database of its own)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from longrun.model import ManualClock, Operation, Status, new_id
from longrun.store import Store, open_store
from longrun.store.base import NewOperation

POSTGRES_SERVER = os.environ.get("LONGRUN_TEST_POSTGRES")
ENGINES = ["sqlite"] + (["postgres"] if POSTGRES_SERVER else [])
requires_postgres = pytest.mark.skipif(
    not POSTGRES_SERVER, reason="LONGRUN_TEST_POSTGRES names no PostgreSQL server"
)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server; dropped afterwards."""
    import psycopg

    assert POSTGRES_SERVER is not None
    name = f"longrun_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(POSTGRES_SERVER)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def store_url(engine: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of ``engine``."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    with store_url(request.param, tmp_path) as url:
        s = open_store(url)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))


def make_op(clock: ManualClock, **fields: Any) -> NewOperation:
    """A new ACCEPTED operation (override any field), wrapped for submit."""
    now = clock.now()
    extra = {
        k: fields.pop(k)
        for k in ("request_hash", "lost_worker_policy", "retry_backoff", "timeout")
        if k in fields
    }
    data: dict[str, Any] = {
        "id": new_id(),
        "operation_type": "test.op",
        "compartment_id": "c1",
        "status": Status.ACCEPTED,
        "input": {"n": 1},
        "time_accepted": now,
        "last_action_time": now,
        **fields,
    }
    return NewOperation(Operation(**data), **extra)


def later(clock: ManualClock, seconds: float) -> datetime:
    return clock.now() + timedelta(seconds=seconds)
