"""SQLite connections on dedicated threads: one writer that group-commits, a few readers.

The writer takes every queued job, runs them in one ``BEGIN IMMEDIATE`` transaction with a
savepoint each (a job that raises is rolled back alone), commits once and then resolves the
callers' futures on their event loop. Under load this turns N commits into one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from longrun.model import ConfigurationError, LongrunError, StoreUnavailable
from longrun.store.migrate import load_migrations, split_statements
from longrun.store.sqlite_checkpoint import Checkpointer

__all__ = [
    "SYNCHRONOUS",
    "Insert",
    "Mergeable",
    "SQLiteConnections",
    "connect",
    "migrate",
    "run_job",
    "translate",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
_BATCH = 512
_STOP = object()
_MAX_PARAMS = 32_766  # SQLite's bound on the parameters of one statement (3.32 and later)


class Mergeable(ABC):
    """A write that the writer runs together with its neighbours of the same ``merge_key`` in
    one statement (``width`` parameters each, within SQLite's bound for one statement)."""

    __slots__ = ()
    merge_key: str = ""
    width: int = 1

    @classmethod
    @abstractmethod
    def run_many(cls, conn: sqlite3.Connection, jobs: list[Any]) -> list[tuple[bool, Any]]:
        """Run ``jobs`` (all of this class and key): an (ok, value or exception) for each."""


class Insert(Mergeable):
    """One row of an INSERT (``head`` ends in VALUES, ``marks`` is its ``(?, …)``): the writer
    merges neighbouring rows of the same head into one multi-row statement."""

    __slots__ = ("head", "marks", "merge_key", "values", "width")

    def __init__(self, head: str, marks: str, values: tuple[Any, ...]) -> None:
        self.head, self.marks, self.values = head, marks, values
        self.merge_key, self.width = head, len(values)

    @classmethod
    def run_many(cls, conn: sqlite3.Connection, jobs: list[Any]) -> list[tuple[bool, Any]]:
        head = jobs[0].head
        if len(jobs) > 1:
            try:  # one statement: it inserts every row or, refused, none
                conn.execute(
                    head + ",".join(r.marks for r in jobs), [v for r in jobs for v in r.values]
                )
                return [(True, None)] * len(jobs)
            except sqlite3.OperationalError:
                raise  # locked or I/O: the whole batch fails and is reported
            except sqlite3.Error:
                pass  # a row was refused: row by row, so that only its caller hears of it
        return [run_job(conn, _single(head, r), False) for r in jobs]


SYNCHRONOUS = ("NORMAL", "FULL")  # NORMAL: a commit survives a crash of the process, not of power


def connect(
    path: str, busy_timeout_ms: int = 10_000, synchronous: str = "NORMAL"
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, NORMAL sync by default."""
    if synchronous not in SYNCHRONOUS:
        raise ConfigurationError(f"synchronous is one of {SYNCHRONOUS}", target="synchronous")
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA cache_size = -32000")
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def translate(exc: sqlite3.Error) -> LongrunError:
    """The one place where driver errors become longrun errors."""
    return StoreUnavailable(f"SQLite: {exc}")


def migrate(path: str) -> None:
    """Bring the file's schema up to date; BEGIN IMMEDIATE makes concurrent starters take turns."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        migrations = load_migrations("sqlite")
        if current > len(migrations):
            raise ConfigurationError(
                f"{path} has schema version {current}, newer than this longrun knows"
            )
        for migration in migrations[current:]:
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, strftime('%s','now') * 1000000)",
                (migration.version, migration.name),
            )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open SQLite store {path}: {exc}") from exc
    finally:
        conn.close()


def run_job(conn: sqlite3.Connection, job: Job, savepoint: bool) -> tuple[bool, Any]:
    """Run one job in the open transaction: (True, its value) or (False, its exception)."""
    if not savepoint:
        try:
            return True, job(conn)
        except sqlite3.OperationalError:
            raise  # locked or I/O: the whole batch fails and is reported
        except sqlite3.Error as exc:
            return False, translate(exc)
        except BaseException as exc:  # raised before its one write: nothing to undo
            return False, exc
    conn.execute("SAVEPOINT job")
    try:
        value = job(conn)
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        if isinstance(exc, sqlite3.OperationalError):
            raise  # locked or I/O: the whole batch fails and is reported
        return False, translate(exc)
    except BaseException as exc:  # a job's own error (NotFound, LeaseLost …): roll it back alone
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return False, exc
    conn.execute("RELEASE job")
    return True, value


def _single(head: str, row: Insert) -> Job:
    def job(conn: sqlite3.Connection) -> None:
        conn.execute(head + row.marks, row.values)

    return job


class SQLiteConnections:
    """The writer thread and the reader pool of one database file."""

    def __init__(self, path: str, readers: int = 3, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._write_loop, name="longrun-sqlite-writer", daemon=True
        )
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._readers = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="longrun-sqlite-reader"
        )
        self._lock = threading.Lock()
        self._wconn: sqlite3.Connection | None = None
        self.on_commit: Callable[[], None] | None = None  # called in the loop after a write commits
        # jobs a loop queued in its current iteration: handed over once, at its end, so that a
        # burst wakes the writer (and contends for the GIL) once instead of once per job
        self._pending: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        self.checkpointer = Checkpointer(lambda: connect(path, synchronous=synchronous))

    def start(self) -> None:
        """Open the writer connection and start its thread and the checkpointer's."""
        self._wconn = connect(self.path, synchronous=self.synchronous)
        self._wconn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
        self.checkpointer.start()
        self._writer.start()

    def close(self) -> None:
        """Stop the threads and close every connection."""
        if self._writer.is_alive():
            self._jobs.put(_STOP)
            self._writer.join(timeout=10)
        self.checkpointer.close()
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None

    # writes ----------------------------------------------------------------------------------
    async def write(self, job: Callable[[sqlite3.Connection], T], *, savepoint: bool = True) -> T:
        """Run ``job`` inside the next group-committed transaction; its exception is re-raised.

        ``savepoint=False`` is for a job whose only write is its last statement (or that raises
        before writing anything): it has nothing to roll back alone, so it saves two statements.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(loop, (job, future, loop, savepoint))
        return await future

    async def write_merged(self, job: Mergeable) -> Any:
        """Run ``job`` in the next group commit, in one statement with its like neighbours."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._enqueue(loop, (job, future, loop, False))
        return await future

    def _enqueue(self, loop: asyncio.AbstractEventLoop, item: Any) -> None:
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append(item)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._jobs.put(self._pending.pop(loop, []))

    def _write_loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                return
            batch = list(first)
            stop = False
            while len(batch) < _BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.extend(more)
            if batch:
                self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[Any]) -> None:
        conn = self._wconn
        assert conn is not None
        # a lone row is one statement: SQLite makes it its own transaction, two statements fewer
        alone = len(batch) == 1 and isinstance(batch[0][0], Insert)
        try:
            if not alone:
                conn.execute("BEGIN IMMEDIATE")
            outcomes = self._run_jobs(conn, batch)
            if not alone:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("SQLite write batch failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, translate(exc))] * len(batch)
        wrote = any(ok for ok, _ in outcomes)
        if wrote:
            self.checkpointer.wrote()
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (_job, future, loop, _sp), (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, ok, value))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
                loop.call_soon_threadsafe(self._resolve, items, wrote)

    def _run_jobs(self, conn: sqlite3.Connection, batch: list[Any]) -> list[tuple[bool, Any]]:
        """Every job of the batch in the open transaction; mergeable ones of one kind together."""
        outcomes: list[tuple[bool, Any] | None] = [None] * len(batch)
        for i, (job, _future, _loop, savepoint) in enumerate(batch):
            if outcomes[i] is not None:
                continue  # ran with an earlier job of its kind
            if not isinstance(job, Mergeable):
                outcomes[i] = run_job(conn, job, savepoint)
                continue
            where = self._alike(batch, i)
            done = type(job).run_many(conn, [batch[k][0] for k in where])
            for k, outcome in zip(where, done, strict=True):
                outcomes[k] = outcome
        lost = (False, StoreUnavailable("SQLite: a write was not run"))  # never: all ran
        return [lost if o is None else o for o in outcomes]

    @staticmethod
    def _alike(batch: list[Any], start: int) -> list[int]:
        """Where the mergeable job at ``start`` and the later ones of its class and key are, up
        to the parameter bound of one statement. Running them at the first one's place is safe:
        every job of a batch was queued before any of them was answered."""
        first: Mergeable = batch[start][0]
        most = max(1, _MAX_PARAMS // max(1, first.width))
        where = [start]
        for k in range(start + 1, len(batch)):
            job = batch[k][0]
            if type(job) is type(first) and job.merge_key == first.merge_key:
                where.append(k)
                if len(where) == most:
                    break
        return where

    def _resolve(self, items: list[tuple[asyncio.Future[Any], bool, Any]], wrote: bool) -> None:
        for future, ok, value in items:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if wrote and self.on_commit is not None:
            self.on_commit()

    # reads -----------------------------------------------------------------------------------
    async def read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on a reader connection (WAL: readers never wait for the writer)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_sync, job)

    async def read_here(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run a short ``job`` (a lookup by key) on the calling thread: the hop to a reader thread
        and back costs ~200 µs, ten times such a lookup. Its connection never waits for a lock:
        should the file be busy for a moment, the job goes to a reader thread after all."""
        conn = getattr(self._local, "here", None)
        if conn is None:
            conn = connect(self.path, busy_timeout_ms=0)
            self._local.here = conn
            with self._lock:
                self._reader_conns.append(conn)
        try:
            return job(conn)
        except sqlite3.OperationalError:  # busy or locked: a reader thread may wait for it
            return await self.read(job)
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _read_sync(self, job: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        try:
            return job(conn)
        except sqlite3.Error as exc:
            raise translate(exc) from exc
