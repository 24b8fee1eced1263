"""One source file into the store, checked unedited; and the loop of a built-in's worker process
(jobs of take: store files; of copy: store another store's contents; of apply: restore them)."""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

from longrun.builtin.blob_writer import BlobWriter, Tick
from longrun.builtin.direct_pack import Sealer
from longrun.builtin.pack_index import PackIndex
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


# a store job: ("store", epoch, blobs dir, tmp dir, temp prefix, content hash, packs dir (""
#               for none), base dir, [(relative path, size, mtime, ino)])
Job = tuple[str, int, str, str, str, str, str, str, Sequence[tuple[str, int, int, int]]]


def _ticker(abort: Any, epoch: int) -> Tick:
    def tick(_: int) -> None:
        if abort.value >= epoch:
            raise Aborted()

    return tick


class _State:
    """What a worker keeps between jobs: its blob writers, pack indexes and packs on their way."""

    def __init__(self, abort: Any) -> None:
        self.abort = abort
        self.writers: dict[tuple[str, str, str, str], BlobWriter] = {}
        self.indexes: dict[str, tuple[PackIndex, int]] = {}  # by packs dir: (index, run listed)
        self._sealer: Sealer | None = None

    def writer(self, blobs: str, tmp: str, prefix: str, algorithm: str) -> BlobWriter:
        key = (blobs, tmp, prefix, algorithm)
        writer = self.writers.get(key)
        if writer is None:
            writer = self.writers[key] = BlobWriter(blobs, tmp, prefix, algorithm)
        return writer

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer()
        return self._sealer

    def flush(self, epoch: int) -> None:
        if self._sealer is not None:
            self._sealer.flush(epoch)


@contextlib.contextmanager
def _packed(writer: BlobWriter, packs: str, epoch: int, state: _State) -> Iterator[None]:
    """With a packs dir: the new small blobs of what runs inside go into one pack, handed to
    the sealing thread (to land in place, whole) when it ends well, and dropped when it does
    not. The packs are listed once per run (``epoch``): what other workers pack meanwhile is not
    looked for, so content met in two of a run's jobs at once may be stored twice (space, never
    a wrong answer)."""
    if not packs:
        yield
        return
    index, listed = state.indexes[packs] if packs in state.indexes else (PackIndex(packs), -1)
    if listed != epoch:
        index.refresh(force=True)
    state.indexes[packs] = (index, epoch)
    writer.index = index
    sealer = state.sealer
    pack = writer.pack = sealer.open(writer.temp(), packs, writer.algorithm)
    try:
        yield
    except BaseException:
        sealer.drop(pack)
        raise
    finally:
        writer.pack = None
    sealer.seal(
        pack,
        epoch,
        lambda: bool(state.abort.value >= epoch),
        lambda path: index.add(path, pack.listed()),
    )


def _store(job: Job, state: _State) -> list[Any]:
    """Store a job's source files, each checked unedited."""
    _, epoch, blobs, tmp, prefix, algorithm, packs, base, files = job
    writer = state.writer(blobs, tmp, prefix, algorithm)
    tick = _ticker(state.abort, epoch)
    stored = []
    with _packed(writer, packs, epoch, state):
        for rel, size, mtime_ns, ino in files:
            tick(0)
            stored.append(store_file(writer, f"{base}/{rel}", (size, mtime_ns, ino), tick))
    return stored


# a copy job: ("copy", epoch, blobs dir, tmp dir, temp prefix, content hash, packs dir,
#              [(digest, (blob or pack path, offset, size or -1))])
Copy = tuple[str, int, str, str, str, str, str, Sequence[tuple[str, tuple[str, int, int]]]]


def _copy(job: Copy, state: _State) -> list[Any]:
    """Store contents of another store (a blob file each, or a range of a pack), hashed again
    as they are: the parent compares each digest with the name it was copied under."""
    _, epoch, blobs, tmp, prefix, algorithm, packs, contents = job
    writer = state.writer(blobs, tmp, prefix, algorithm)
    tick = _ticker(state.abort, epoch)
    stored = []
    with _packed(writer, packs, epoch, state):
        for _, (path, offset, size) in contents:
            tick(0)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise BlobGone(path) from None
            try:
                if offset:
                    os.lseek(fd, offset, os.SEEK_SET)
                digest, got, _, written = writer.put(fd, tick, size)
            finally:
                os.close(fd)
            stored.append((digest, got, written))
    return stored


# a restore job: ("restore", epoch, content hash, stage dir,
#                 [(relative path, (blob or pack path, offset, size or -1), mode, mtime)])
Restore = tuple[str, int, str, str, Sequence[tuple[str, tuple[str, int, int], int, int]]]


def _restore(job: Restore, abort: Any) -> list[tuple[str, int]]:
    _, epoch, algorithm, stage, files = job
    tick = _ticker(abort, epoch)
    written = []
    for rel, where, mode, mtime_ns in files:
        tick(0)
        written.append(restore_file(where, f"{stage}/{rel}", mode, mtime_ns, algorithm, tick))
    return written


def _outcome(job: Any, state: _State) -> tuple[Any, ...]:
    try:
        if job[0] == "flush":
            state.flush(job[1])
            return ("ok", [])
        if job[0] == "restore":
            return ("ok", _restore(job, state.abort))
        if job[0] == "copy":
            return ("ok", _copy(job, state))
        return ("ok", _store(job, state))
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
    temp file). A store or copy job's pack lands after its reply (``direct_pack``): a
    ("flush", epoch) message waits until all have, and replies ("ok", []) or what failed.

    Outcomes: ("ok", [per file: (digest, size, bytes written) stored or copied, (digest, size)
    restored]), ("changed", path, what), ("missing", blob path), ("aborted",),
    ("oserror", errno, message, filename) or ("error", text)."""
    state = _State(abort)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        reply = _outcome(job, state)
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
