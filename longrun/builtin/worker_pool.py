"""The built-ins' worker processes: started once, they run one operation's batches at a time."""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, cast

import blake3

from longrun.builtin import take_worker
from longrun.builtin.meter import Meter

__all__ = ["Job", "Unavailable", "dispatch", "raise_for", "worker_pids", "workers_for"]

_DRAIN = 3.0  # seconds a stopped run waits for its jobs to stop before the pool is killed

Job = tuple[tuple[Any, ...], Any]  # (the message after its epoch, what the reply is about)
Reply = Callable[[Any, tuple[Any, ...]], None]  # (what the job was about, the worker's reply)
Leftovers = Callable[[int], None]  # removes what a killed worker (by pid) left behind


class Unavailable(Exception):
    """No worker processes for this run (busy, failed to start, or one died): use threads."""


def workers_for(threads: int) -> int:
    """How many worker processes a run asking for ``threads`` uses: at most one more than the
    cpus, so that one may wait (a full disk queue, its next job) meanwhile."""
    return min(threads, (os.cpu_count() or 1) + 1)


def raise_for(reply: tuple[Any, ...]) -> None:
    """Raise what a worker's reply other than "ok" reports (the kinds every job shares)."""
    if reply[0] == "oserror":
        raise OSError(reply[1], reply[2], reply[3])
    if reply[0] != "ok":
        raise RuntimeError(f"a built-in's worker process failed: {reply}")


# a worker's first lines: the two packages as bare namespaces (their __init__ modules import
# the engine), so that the process loads only take_worker and the light modules it needs;
# and the site-packages folder that holds blake3 (it runs without site)
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

    A take, copy or apply of many bytes in several files spends its CPU on hashing and on
    system calls; threads of one process contend for the GIL and its futex, processes do not.
    The pool serves one run at a time (another meanwhile uses threads) and lives until the
    process exits.

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

    def kill(self, leftovers: Leftovers | None = None) -> None:
        """End every worker at once; then ``leftovers`` removes what each left behind."""
        for process, conn in self.workers:
            with contextlib.suppress(OSError):
                process.kill()
            conn.close()
        for process, _ in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
            if leftovers is not None:
                leftovers(process.pid)
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


_lock = threading.Lock()  # one run at a time on the pool
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


def _discard(leftovers: Leftovers | None) -> None:
    global _pool
    if _pool is not None:
        _pool.kill(leftovers)
        _pool = None


@atexit.register
def _shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None


def worker_pids() -> list[int]:
    """The worker processes' ids (none before the first run that used them)."""
    return _pool.pids() if _pool is not None else []


@contextlib.contextmanager
def _session(size: int) -> Iterator[_Pool]:
    if not _lock.acquire(blocking=False):
        raise Unavailable()
    try:
        pool = _get(size)
        pool.epoch += 1
        yield pool
    finally:
        _lock.release()


def dispatch(
    processes: int,
    meter: Meter,
    jobs: Sequence[Job],
    on_reply: Reply,
    leftovers: Leftovers | None = None,
    finish: tuple[Any, ...] | None = None,
) -> None:
    """Run ``jobs`` on the pool, each worker taking the next as it sends back one; each reply
    goes to ``on_reply``, in the order they come. Then ``finish``, when given, goes to every
    worker, and each reply to it to ``raise_for`` (the jobs' packs land after their replies:
    ("flush",) waits for them). A cancel (``meter``) or an error stops every job under way
    (they stop at their next chunk), then raises. Raises ``Unavailable`` when the processes
    cannot run them: busy, not started, or one died (then ``leftovers`` cleans up after each
    worker). The jobs whose replies came are done, but for what a finish had to wait for; the
    caller does the rest."""
    with _session(processes) as pool:
        run = _Run(pool, meter, on_reply, leftovers)
        try:
            run.run(jobs)
        except BaseException:
            if finish is not None:  # nothing of the run is still being written when it ends
                run.settle(finish)
            raise
        if finish is not None:
            run.run([(finish, None)] * len(pool.workers), each=True)


class _Run:
    """One operation's jobs over the pool: dispatch, collect, and on any error stop them all."""

    def __init__(
        self, pool: _Pool, meter: Meter, on_reply: Reply, leftovers: Leftovers | None
    ) -> None:
        self.pool, self.meter, self.on_reply, self.leftovers = pool, meter, on_reply, leftovers
        self.busy: dict[Connection, Any] = {}

    def run(self, jobs: Sequence[Job], each: bool = False) -> None:
        """Run ``jobs``, each on the next idle worker (``each``: one on every worker, their
        replies to ``raise_for``)."""
        pending = deque(jobs)
        idle = [conn for _, conn in self.pool.workers]
        try:
            while pending or self.busy:
                while idle and pending:
                    conn, (message, about) = idle.pop(), pending.popleft()
                    self._send(conn, message, about)
                for ready in wait(list(self.busy), timeout=0.1):
                    conn = cast(Connection, ready)
                    about = self.busy.pop(conn)
                    reply = self._receive(conn)
                    if each:
                        raise_for(reply)
                    else:
                        self.on_reply(about, reply)
                        idle.append(conn)
                self.meter.ctx.check_cancelled()
        except BaseException:
            self._stop()
            raise

    def _send(self, conn: Connection, message: tuple[Any, ...], about: Any) -> None:
        try:
            conn.send((message[0], self.pool.epoch, *message[1:]))
        except OSError:
            _discard(self.leftovers)
            raise Unavailable() from None
        self.busy[conn] = about

    def _receive(self, conn: Connection) -> tuple[Any, ...]:
        try:
            return cast(tuple[Any, ...], conn.recv())
        except (EOFError, OSError):  # the worker died: the pool is gone, threads do the rest
            _discard(self.leftovers)
            raise Unavailable() from None

    def settle(self, finish: tuple[Any, ...]) -> None:
        """After a stop: ``finish`` on every worker, its outcome ignored (kill the pool if one
        does not answer within ``_DRAIN`` s)."""
        if self.pool is not _pool:
            return
        for _, conn in self.pool.workers:
            with contextlib.suppress(Unavailable):
                self._send(conn, finish, None)
        self._drain()

    def _stop(self) -> None:
        """Stop this run's jobs; kill the pool if one does not stop within ``_DRAIN`` s."""
        if self.pool is not _pool:  # it was discarded: its workers are gone
            return
        self.pool.abort.value = self.pool.epoch
        self._drain()

    def _drain(self) -> None:
        """Wait for the replies under way, ignored; kill the pool if one is late."""
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
                    _discard(self.leftovers)  # a worker died: the pool goes, with its leftovers
                    return
        if self.busy and self.pool is _pool:
            _discard(self.leftovers)
