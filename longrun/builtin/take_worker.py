"""One source file into the store, checked unedited; and the loop of a built-in's worker process
(jobs of take and copy: store files; of apply: restore them)."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from longrun.builtin.blob_writer import BlobWriter, Tick
from longrun.builtin.restore_file import BlobGone, restore_file

__all__ = ["Aborted", "Changed", "Seen", "main", "serve", "store_file"]

Seen = tuple[int, int, int]  # what the scan saw of a file: (size, mtime_ns, inode)


class Changed(Exception):
    """The file at ``path`` changed (``what``: "changed" or "vanished") while it was read."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(path, what)
        self.path, self.what = path, what


class Aborted(Exception):
    """The take this work belongs to was stopped (canceled, or it failed elsewhere)."""


def _seen(st: os.stat_result) -> Seen:
    return st.st_size, st.st_mtime_ns, st.st_ino


def store_file(
    writer: BlobWriter, path: str, seen: Seen, tick: Tick | None = None
) -> tuple[str, int, int]:
    """Store one file; returns (digest, size, bytes written). Unchanged means: the open file,
    after its read, and the path, after that, show the very stat the scan saw (no stat before
    the read: the scan's is it). Raises ``Changed`` naming the path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Changed(path, "vanished") from None
    try:
        digest, size, _, written = writer.put(fd, tick)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    try:
        now = os.stat(path)
    except FileNotFoundError:
        raise Changed(path, "vanished") from None
    if size != seen[0] or _seen(after) != seen or _seen(now) != seen:
        raise Changed(path, "changed")
    return digest, size, written


# a store job: ("store", epoch, blobs dir, tmp dir, temp prefix, content hash, base dir,
#               [(relative path, size, mtime, ino)])
Job = tuple[str, int, str, str, str, str, str, Sequence[tuple[str, int, int, int]]]
Writers = dict[tuple[str, str, str, str], BlobWriter]


def _ticker(abort: Any, epoch: int) -> Tick:
    def tick(_: int) -> None:
        if abort.value >= epoch:
            raise Aborted()

    return tick


def _store(job: Job, abort: Any, writers: Writers) -> list[Any]:
    _, epoch, blobs, tmp, prefix, algorithm, base, files = job
    key = (blobs, tmp, prefix, algorithm)
    writer = writers.get(key)
    if writer is None:
        writer = writers[key] = BlobWriter(blobs, tmp, prefix, algorithm)
    tick = _ticker(abort, epoch)
    stored = []
    for rel, size, mtime_ns, ino in files:
        tick(0)
        stored.append(store_file(writer, f"{base}/{rel}", (size, mtime_ns, ino), tick))
    return stored


# a restore job: ("restore", epoch, blobs dir, content hash, stage dir,
#                 [(relative path, digest, mode, mtime)])
Restore = tuple[str, int, str, str, str, Sequence[tuple[str, str, int, int]]]


def _restore(job: Restore, abort: Any) -> list[tuple[str, int]]:
    _, epoch, blobs, algorithm, stage, files = job
    tick = _ticker(abort, epoch)
    written = []
    for rel, digest, mode, mtime_ns in files:
        tick(0)
        blob = f"{blobs}/{digest[:2]}/{digest}"
        written.append(restore_file(blob, f"{stage}/{rel}", mode, mtime_ns, algorithm, tick))
    return written


def _outcome(job: Any, abort: Any, writers: Writers) -> tuple[Any, ...]:
    try:
        if job[0] == "restore":
            return ("ok", _restore(job, abort))
        return ("ok", _store(job, abort, writers))
    except Aborted:
        return ("aborted",)
    except Changed as exc:
        return ("changed", exc.path, exc.what)
    except BlobGone as exc:
        return ("missing", exc.path)
    except OSError as exc:
        return ("oserror", exc.errno, exc.strerror, exc.filename)
    except Exception as exc:
        return ("error", f"{type(exc).__name__}: {exc}")


def serve(conn: Connection, abort: Any) -> None:
    """A worker process: run each job received on ``conn`` and send back its outcome, until
    None or the parent's end closes. ``abort`` (shared memory) holds the epoch of the last
    stopped run: a job of that run or older stops at its next chunk (a store job removes its
    temp file).

    Outcomes: ("ok", [per file: (digest, size, bytes written) stored, (digest, size)
    restored]), ("changed", path, what), ("missing", blob path), ("aborted",),
    ("oserror", errno, message, filename) or ("error", text)."""
    writers: Writers = {}
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        reply = _outcome(job, abort, writers)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


class _Epoch:
    """The abort epoch the parent writes into shared memory (``worker_pool``)."""

    def __init__(self, fd: int) -> None:
        self._map = mmap.mmap(fd, 8, access=mmap.ACCESS_READ)

    @property
    def value(self) -> int:
        return int(struct.unpack_from("q", self._map)[0])


def main(conn_fd: int, abort_fd: int) -> None:
    """A worker process's entry: its socket to the parent, and the abort epoch's memfd."""
    serve(Connection(conn_fd), _Epoch(abort_fd))
