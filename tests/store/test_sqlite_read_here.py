"""SQLite: lookups by key run on the calling thread; a busy one goes to a reader thread instead."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longrun.model import StoreUnavailable
from longrun.store.sqlite_conn import SQLiteConnections, migrate


@pytest.fixture
async def conns(tmp_path: Path) -> AsyncIterator[SQLiteConnections]:
    path = str(tmp_path / "here.db")
    migrate(path)
    c = SQLiteConnections(path)
    c.start()
    yield c
    c.close()


def _count(conn: sqlite3.Connection) -> tuple[int, int]:
    return conn.execute("SELECT count(*) FROM operations").fetchone()[0], threading.get_ident()


async def test_a_lookup_runs_on_the_calling_thread(conns: SQLiteConnections) -> None:
    assert await conns.read_here(_count) == (0, threading.get_ident())
    assert (await conns.read(_count))[1] != threading.get_ident()  # read() hops, for comparison


async def test_a_busy_lookup_goes_to_a_reader_thread(conns: SQLiteConnections) -> None:
    caller = threading.get_ident()

    def busy_here(conn: sqlite3.Connection) -> tuple[int, int]:
        if threading.get_ident() == caller:  # what a locked file answers a connection that never waits
            raise sqlite3.OperationalError("database is locked")
        return _count(conn)

    count, thread = await conns.read_here(busy_here)
    assert count == 0 and thread != caller


async def test_other_errors_are_the_store_s_errors(conns: SQLiteConnections) -> None:
    with pytest.raises(StoreUnavailable, match="no such table"):
        await conns.read_here(lambda c: c.execute("SELECT * FROM nowhere").fetchall())
