"""SQLite WAL checkpoints on a thread of their own, so that a commit never waits for one."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["Checkpointer"]

log = logging.getLogger(__name__)


class Checkpointer:
    """Runs a PASSIVE checkpoint after writes, at most once per ``interval`` seconds, on its own
    connection. The writer's connection has auto-checkpoint off: otherwise the commit that fills
    the WAL past 1,000 pages also copies them into the database and syncs it, which stalls every
    write queued behind it (tens of ms, more on a busy disk). PASSIVE never blocks a writer or a
    reader; what it cannot copy yet, the next one does."""

    def __init__(self, open_conn: Callable[[], sqlite3.Connection], interval: float = 0.5) -> None:
        self.open_conn = open_conn  # a connection to the database, with the store's sync setting
        self.interval = interval
        self.checkpoints = 0  # completed passes, for tests and metrics
        self._wrote = threading.Event()
        self._stop = threading.Event()
        self._conn: sqlite3.Connection | None = None
        self._thread = threading.Thread(
            target=self._run, name="longrun-sqlite-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._conn = self.open_conn()
        self._thread.start()

    def wrote(self) -> None:
        """A write committed: checkpoint within ``interval``."""
        self._wrote.set()

    def close(self) -> None:
        """Stop the thread (the last connection to close checkpoints what is left)."""
        self._stop.set()
        self._wrote.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self) -> None:
        assert self._conn is not None
        while not self._stop.is_set():
            self._wrote.wait()
            if self._stop.wait(self.interval):  # gather the writes of an interval into one pass
                return
            self._wrote.clear()
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # busy or I/O: the next pass tries again
                log.warning("SQLite checkpoint failed: %s", exc)
                continue
            self.checkpoints += 1
