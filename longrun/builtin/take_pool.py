"""Take's worker processes: started once, they read, hash and store batches of a take's files."""

from __future__ import annotations

import atexit
import contextlib
import glob
import mmap
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import cast

import blake3

from longrun.builtin import take_worker
from longrun.builtin.blob_writer import BlobWriter
from longrun.builtin.durability import Writeback
from longrun.builtin.meter import Meter
from longrun.builtin.source_tree import changed

__all__ = [
    "MIN_BYTES",
    "MIN_FILES",
    "Unavailable",
    "pays",
    "store_files",
    "worker_pids",
    "workers_for",
]

MIN_BYTES = 64 << 20  # below this a take stays on threads: the hand-offs would not pay
MIN_FILES = 8
_BATCH_BYTES = 4 << 20  # a job: files up to this many bytes (or a single larger file)
_BATCH_FILES = 64
_DRAIN = 3.0  # seconds a stopped take waits for its jobs to stop before the pool is killed

Files = Sequence[tuple[str, os.stat_result]]


class Unavailable(Exception):
    """No worker processes for this take (busy, failed to start, or one died): use threads."""


def pays(total: int, files: int, throttled: bool) -> bool:
    """Whether a take of ``total`` bytes in ``files`` files should use the processes."""
    return total >= MIN_BYTES and files >= MIN_FILES and not throttled


def workers_for(threads: int) -> int:
    """How many worker processes a take or copy asking for ``threads`` uses: at most one more
    than the cpus, so that one may wait (a full disk queue, its next job) meanwhile."""
    return min(threads, (os.cpu_count() or 1) + 1)


def _batches(files: Files) -> list[list[tuple[str, os.stat_result]]]:
    """Consecutive files (largest first) grouped into jobs of about ``_BATCH_BYTES``."""
    batches: list[list[tuple[str, os.stat_result]]] = []
    current: list[tuple[str, os.stat_result]] = []
    size = 0
    for rel, st in files:
        current.append((rel, st))
        size += st.st_size
        if size >= _BATCH_BYTES or len(current) >= _BATCH_FILES:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


# a worker's first lines: the two packages as bare namespaces (their __init__ modules import
# the engine), so that the process loads only take_worker, blob_writer, write_behind and
# content_hash; and the site-packages folder that holds blake3 (it runs without site)
_BOOT = """import sys, types
sys.path.append(sys.argv[4])
for name, path in (("longrun", sys.argv[1]), ("longrun.builtin", sys.argv[1] + "/builtin")):
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
from longrun.builtin.take_worker import main
main(int(sys.argv[2]), int(sys.argv[3]))
"""


_HASH = os.path.dirname(os.path.dirname(os.path.abspath(blake3.__file__)))


class _Epoch:
    """The shared abort epoch, written here and read by the workers (8 bytes of a memfd)."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("longrun-take-abort", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, 8)
        self._map = mmap.mmap(self.fd, 8)

    @property
    def value(self) -> int:
        return int(struct.unpack_from("q", self._map)[0])

    @value.setter
    def value(self, epoch: int) -> None:
        struct.pack_into("q", self._map, 0, epoch)

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)


class _Pool:
    """``size`` worker processes, each with a socket, and the shared abort epoch.

    A take of many bytes in several files spends its CPU on hashing and on system calls; threads
    of one process contend for the GIL and its futex, processes do not. The pool serves one take
    at a time (another take meanwhile uses threads) and lives until the process exits.

    A worker is a fresh interpreter (``subprocess``: fork and exec at once, safe from a process
    with threads), not a ``multiprocessing`` child: those import the parent's ``__main__``."""

    def __init__(self, size: int) -> None:
        self.abort = _Epoch()
        self.epoch = 0
        self.workers: list[tuple[subprocess.Popen[bytes], Connection]] = []
        package = os.path.dirname(os.path.dirname(os.path.abspath(take_worker.__file__)))
        try:
            for _ in range(size):
                mine, theirs = socket.socketpair()
                fds = (theirs.fileno(), self.abort.fd)
                with theirs:
                    process = subprocess.Popen(
                        [sys.executable, "-I", "-S", "-c", _BOOT, package, *map(str, fds), _HASH],
                        stdin=subprocess.DEVNULL,
                        pass_fds=fds,
                    )
                self.workers.append((process, Connection(mine.detach())))
        except BaseException:
            self.kill()
            raise

    def pids(self) -> list[int]:
        return [process.pid for process, _ in self.workers]

    def kill(self, writer: BlobWriter | None = None) -> None:
        """End every worker at once; remove the temp files they left in ``writer``'s store."""
        for process, conn in self.workers:
            with contextlib.suppress(OSError):
                process.kill()
            conn.close()
        for process, _ in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
            if writer is not None:
                for temp in glob.glob(f"{writer.tmp}/{writer.prefix}-{process.pid}-*"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
        self.abort.close()

    def close(self) -> None:
        """Ask each worker to exit; kill the ones that do not within a few seconds."""
        for _, conn in self.workers:
            with contextlib.suppress(OSError):
                conn.send(None)
        deadline = time.monotonic() + 3
        for process, _ in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
        self.kill()


_lock = threading.Lock()  # one take at a time on the pool
_pool: _Pool | None = None
_failed = False  # the pool could not start once: threads from then on


def _get(size: int) -> _Pool:
    global _pool, _failed
    if _pool is None:
        if _failed:
            raise Unavailable()
        try:
            _pool = _Pool(size)
        except Exception as exc:
            _failed = True
            raise Unavailable() from exc
    return _pool


def _discard(writer: BlobWriter) -> None:
    global _pool
    if _pool is not None:
        _pool.kill(writer)
        _pool = None


@atexit.register
def _shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


def worker_pids() -> list[int]:
    """The worker processes' ids (none before the first take that used them)."""
    return _pool.pids() if _pool is not None else []


def store_files(
    writer: BlobWriter,
    meter: Meter,
    writeback: Writeback,
    base: str,
    files: Files,
    processes: int,
    done: dict[str, tuple[str, int]],
) -> None:
    """Store ``files`` (relative to ``base``) with the worker processes, recording each stored
    file's (digest, size) in ``done`` as its job comes back. Raises ``Unavailable`` when the
    processes cannot do it (``done`` then holds what they did; the caller does the rest)."""
    if not _lock.acquire(blocking=False):
        raise Unavailable()
    try:
        pool = _get(processes)
        pool.epoch += 1
        _Run(pool, writer, meter, writeback, base, done).run(_batches(files))
    finally:
        _lock.release()


class _Run:
    """One take's jobs over the pool: dispatch, collect, and on any error stop them all."""

    def __init__(
        self,
        pool: _Pool,
        writer: BlobWriter,
        meter: Meter,
        writeback: Writeback,
        base: str,
        done: dict[str, tuple[str, int]],
    ) -> None:
        self.pool, self.writer, self.meter, self.writeback = pool, writer, meter, writeback
        self.base, self.done = base, done
        self.busy: dict[Connection, list[tuple[str, os.stat_result]]] = {}

    def run(self, batches: list[list[tuple[str, os.stat_result]]]) -> None:
        pending = deque(batches)
        idle = [conn for _, conn in self.pool.workers]
        try:
            while pending or self.busy:
                while idle and pending:
                    conn, batch = idle.pop(), pending.popleft()
                    self._send(conn, batch)
                for ready in wait(list(self.busy), timeout=0.1):
                    conn = cast(Connection, ready)
                    self._collect(conn, self.busy.pop(conn))
                    idle.append(conn)
                self.meter.ctx.check_cancelled()
        except BaseException:
            self._stop()
            raise

    def _send(self, conn: Connection, batch: list[tuple[str, os.stat_result]]) -> None:
        files = [(rel, st.st_size, st.st_mtime_ns, st.st_ino) for rel, st in batch]
        writer = self.writer
        job = (self.pool.epoch, writer.blobs, writer.tmp, writer.prefix, writer.algorithm)
        try:
            conn.send((*job, self.base, files))
        except OSError:
            _discard(self.writer)
            raise Unavailable() from None
        self.busy[conn] = batch

    def _collect(self, conn: Connection, batch: list[tuple[str, os.stat_result]]) -> None:
        try:
            reply = conn.recv()
        except (EOFError, OSError):  # the worker died: the pool is gone, threads do the rest
            _discard(self.writer)
            raise Unavailable() from None
        if reply[0] == "changed":
            raise changed(reply[1], reply[2])
        if reply[0] == "oserror":
            raise OSError(reply[1], reply[2], reply[3])
        if reply[0] != "ok":
            raise RuntimeError(f"a take's worker process failed: {reply}")
        written = 0
        for (rel, _), (digest, size, wrote) in zip(batch, reply[1], strict=True):
            self.done[rel] = (digest, size)
            written += wrote
        if written:
            self.writeback.wrote(written)
        self.meter.tick(sum(size for _, size, _ in reply[1]))
        self.meter.item(len(batch))

    def _stop(self) -> None:
        """Stop this take's jobs; kill the pool if one does not stop within ``_DRAIN`` s."""
        if self.pool is not _pool:  # it was discarded: its workers are gone
            return
        self.pool.abort.value = self.pool.epoch
        deadline = time.monotonic() + _DRAIN
        while self.busy and self.pool is _pool:
            ready = wait(list(self.busy), timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            for conn in ready:
                self.busy.pop(cast(Connection, conn))
                try:
                    cast(Connection, conn).recv()  # its outcome no longer matters
                except (EOFError, OSError):
                    _discard(self.writer)  # a worker died: the pool goes, with its temp files
                    return
        if self.busy and self.pool is _pool:
            _discard(self.writer)
