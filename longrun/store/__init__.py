"""Stores: the only code that speaks SQL. One interface, one module per engine."""

from __future__ import annotations

import os
from pathlib import Path

from longrun.model import ConfigurationError
from longrun.store.base import Store

__all__ = ["Store", "open_store", "sqlite_path"]


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    rest = url[len("sqlite:///") :]
    if not rest or rest == ":memory:":
        raise ConfigurationError(f"a SQLite store needs a file path: {url!r}", target="db")
    return Path(rest)


def open_store(url: str) -> Store:
    """The store named by ``url`` (not opened yet: call ``await store.open()``); slowed down by
    LONGRUN_STORE_DELAY_MS milliseconds a call when that is set (fault injection)."""
    store = _open_engine(url)
    from longrun.store.delayed import DELAY_ENV, DelayedStore

    delay_ms = float(os.environ.get(DELAY_ENV) or 0)
    if delay_ms <= 0:
        return store
    # its domain methods are attached when its module loads, which mypy cannot see
    return DelayedStore(store, delay_ms / 1000)  # type: ignore[abstract]


def _open_engine(url: str) -> Store:
    if url.startswith("sqlite:///"):
        from longrun.store.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from longrun.store.postgres import PostgresStore
        except ImportError as exc:  # psycopg is an optional extra
            raise ConfigurationError(
                f"a PostgreSQL store needs psycopg ({exc.name or exc}): "
                "pip install 'longrun[postgres]'",
                target="db",
            ) from exc
        return PostgresStore(url)
    raise ConfigurationError(
        f"unknown store URL {url!r}: expected sqlite:///path or postgresql://…", target="db"
    )
