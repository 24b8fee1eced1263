"""Stores: the only code that speaks SQL. One interface, one module per engine."""

from __future__ import annotations

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
    """The store named by ``url`` (not opened yet: call ``await store.open()``)."""
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
