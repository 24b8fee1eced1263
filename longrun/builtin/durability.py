"""Making a snapshot store's writes durable: syncs along the way, then one that counts."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = ["Flush", "Writeback", "fsync_dir", "sync_filesystem"]


def _libc_syncfs() -> Callable[[int], int] | None:
    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if syncfs is not None:
        syncfs.argtypes, syncfs.restype = [ctypes.c_int], ctypes.c_int
    return syncfs


_SYNCFS = _libc_syncfs()  # Linux; elsewhere sync(2), which syncs every file system


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Make every write on the file system holding ``path`` durable, in one call: a snapshot's
    thousands of new blobs cost one flush, not an fsync (and a journal commit) each."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS is None or _SYNCFS(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class Flush:
    """One ``sync_filesystem`` of a store's root, run on a thread of its own so that the caller
    can do other work (check the source, build the manifest) while the disk catches up."""

    def __init__(self, root: Path) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(root,), name="longrun-flush", daemon=True
        )
        self._thread.start()

    def _run(self, root: Path) -> None:
        try:
            sync_filesystem(root)
        except BaseException as exc:  # raised again by wait, in the caller's thread
            self._error = exc

    def wait(self) -> None:
        """Until the sync is done; raises what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error


class Writeback:
    """Syncs the store's file system on a thread of its own each time ``every`` more bytes were
    written: the disk takes what a take wrote so far (inodes, directory entries, sub-page tails,
    blobs written through the cache) while later files are read and hashed, so the final
    ``sync_filesystem`` (still what makes the snapshot durable) has little left to wait for. A sync per ``every`` bytes, not a call per file: the kernel's flusher does the work,
    and the writers pay no thread hand-off per blob.

    ``every=None`` makes no syncs along the way (and starts no thread): for writers that start
    their own writeback, such as a take's pack files.

    Use as a context manager; leaving it waits for a sync under way.
    """

    def __init__(self, root: Path, every: int | None = 64 << 20) -> None:
        self._root = root
        self._every = every
        self._pending = 0  # bytes written since the last sync began; races only shift a sync
        self._wake = threading.Event()
        self._done = False
        self.syncs = 0  # how many it made
        self._thread: threading.Thread | None = None
        if every is not None:
            self._thread = threading.Thread(
                target=self._run, name="longrun-writeback", daemon=True
            )
            self._thread.start()

    def wrote(self, size: int) -> None:
        """``size`` more bytes were written to the store."""
        if self._every is None:
            return
        self._pending += size
        if self._pending >= self._every:
            self._pending = 0
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._done:
                return
            with contextlib.suppress(OSError):  # the final sync reports what failed
                sync_filesystem(self._root)
            self.syncs += 1

    def close(self) -> None:
        """Stop; waits for a sync under way."""
        self._done = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Writeback:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
