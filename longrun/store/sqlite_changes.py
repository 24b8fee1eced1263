"""The SQLite change signal: local commits wake waiters at once; other processes' commits are
noticed through ``PRAGMA data_version``, polled every 20 ms by one watcher task while someone
waits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from longrun.store.sqlite_conn import connect

__all__ = ["ChangeSignal"]


class ChangeSignal:
    """``wait(timeout)`` returns True at the next change of the database file."""

    def __init__(self, path: str, poll_interval: float = 0.02) -> None:
        self.path = path
        self.poll_interval = poll_interval
        self._event = asyncio.Event()
        self._waiters = 0
        self._watcher: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._seen = -1  # the data_version last looked at, kept across watcher runs

    def open(self) -> None:
        """Open the watcher's own connection (it never writes, so every commit moves its version)."""
        self._event = asyncio.Event()
        # never waits for a lock: it is read on the event loop (a busy file counts as a change)
        self._conn = connect(self.path, busy_timeout_ms=0)
        # the baseline is taken now, not when a watcher starts: a commit made between the start
        # of a wait and the watcher's first read would otherwise never be noticed
        self._seen = self._data_version()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def notify(self) -> None:
        """Wake every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        event = self._event
        self._waiters += 1
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="longrun-sqlite-watch")
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, timeout))
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1

    async def _watch(self) -> None:
        while self._waiters > 0 and self._conn is not None:
            await asyncio.sleep(self.poll_interval)
            # a few microseconds, on the loop: a thread hop per poll would cost ten times more
            try:
                version = self._data_version()
            except sqlite3.OperationalError:  # locked for a moment: wake the waiters to look
                version = self._seen + 1
            if version != self._seen:  # may wake once for a change older than this wait: fine
                self._seen = version
                self.notify()

    def _data_version(self) -> int:
        with self._lock:
            if self._conn is None:
                return -1
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
