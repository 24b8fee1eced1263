"""A worker's packs filled in page-aligned buffers and written past the page cache (O_DIRECT)
by a thread of their own, so that a take neither waits for the disk nor fills memory with pages
the kernel must then write back and reclaim.

A small file is read straight into its pack's buffer (``room``, then ``commit`` once hashed and
found new): no copy between the read and the write. ``Sealer.seal`` hands the full buffer to the
sealing thread, which writes it (zeros, then the footer, make it whole 4 KiB blocks), closes the
file and renames it into ``packs/``, while the worker reads its next job into another buffer.
A worker replies for a job before its pack has landed; ``Sealer.flush`` (the run's last message
to each worker) waits until every pack of the run has, and raises what failed. Where O_DIRECT
is refused (some FUSE and network file systems, tmpfs before Linux 6.6) the pack goes through
the page cache with its writeback started.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from longrun.builtin.blob_writer import CHUNK
from longrun.builtin.pack_file import footer, listed
from longrun.builtin.write_behind import start_writeback

__all__ = ["ALIGN", "CAPACITY", "DirectPack", "Sealer"]

ALIGN = 4096  # O_DIRECT's unit (every common device's logical block divides it)
CAPACITY = 8 << 20  # a buffer: a job's small files (4 MiB and the last one) with room to spare
BUFFERS = 3  # per worker: one filling, two on their way to disk
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_DIRECT = getattr(os, "O_DIRECT", 0)


def _footer_room(count: int) -> int:
    """The most the zeros and footer of a pack of ``count`` blobs can take (with its header)."""
    return ALIGN + count * 48 + 256


class DirectPack:
    """One pack being filled in ``buffer``; ``seal`` (on the sealing thread) writes it and moves
    it into ``folder``. When a buffer cannot hold the next content, its whole blocks are written
    at once and the rest moved to its start (``_spill``): any number of blobs fits."""

    def __init__(
        self, temp: str, folder: str, algorithm: str, buffer: mmap.mmap, sealer: Sealer
    ) -> None:
        self.temp, self.folder, self.algorithm = temp, folder, algorithm
        self.entries: dict[str, tuple[int, int]] = {}  # digest -> (offset, size)
        self.buffer, self._view, self._sealer = buffer, memoryview(buffer), sealer
        self._fill = 0  # bytes in the buffer
        self._base = 0  # the file offset of the buffer's first byte
        self._fd: int | None = None
        self._made = False  # whether the temp file exists

    def has(self, digest: str) -> bool:
        """Whether ``digest`` is in this pack or in one of the worker's on their way to disk."""
        return digest in self.entries or self._sealer.has(digest)

    def room(self) -> memoryview:
        """``CHUNK`` bytes after the contents: read a content into it, then ``commit`` it (or
        not: the next ``room`` is the same bytes)."""
        if self._fill + CHUNK + _footer_room(len(self.entries) + 1) > CAPACITY:
            self._spill()
        return self._view[self._fill : self._fill + CHUNK]

    def commit(self, digest: str, size: int) -> None:
        """Keep the ``size`` bytes just read into ``room`` as content ``digest``."""
        if self._fd is None:  # here, not on the sealing thread: the disk's writes wait on it
            self._open()
        self.entries[digest] = (self._base + self._fill, size)
        self._fill += size

    def listed(self) -> list[tuple[bytes, int, int]]:
        return listed(self.entries)

    def seal(self) -> str | None:
        """Write what is left, the zeros and the footer; close the file and move the pack into
        place; its path (None when it holds nothing: no file)."""
        if not self.entries:
            self.discard()
            return None
        tail = footer(self.listed(), self.algorithm)
        end = self._fill + len(tail)
        whole = -(-(self._base + end) // ALIGN) * ALIGN - self._base
        self._view[self._fill : whole - len(tail)] = bytes(whole - len(tail) - self._fill)
        self._view[whole - len(tail) : whole] = tail
        try:
            self._write(whole)
            self._close()
            path = f"{self.folder}/{os.path.basename(self.temp)}.pack"
            os.replace(self.temp, path)
        except BaseException:
            self.discard()
            raise
        return path

    def discard(self) -> None:
        """Drop the pack (its temp file, if one was made)."""
        self._close()
        if self._made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)

    def _spill(self) -> None:
        whole = self._fill // ALIGN * ALIGN
        self._write(whole)
        rest = self._fill - whole
        self._view[:rest] = self._view[whole : self._fill]
        self._base += whole
        self._fill = rest

    def _write(self, size: int) -> None:
        """Write the buffer's first ``size`` bytes (whole blocks) at its file offset."""
        fd = self._fd if self._fd is not None else self._open()
        done = 0
        while done < size:
            done += os.pwrite(fd, self._view[done:size], self._base + done)

    def _open(self) -> int:
        fd = self._fd = _open(self.temp)
        self._made = True
        return fd

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                start_writeback(fd)  # nothing to do after O_DIRECT; the fallback's pages go
            finally:
                os.close(fd)


def _open(path: str) -> int:
    """A new file for writing past the page cache, or through it where that is refused."""
    if _DIRECT:
        try:
            return os.open(path, _CREATE | _DIRECT, 0o644)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    return os.open(path, _CREATE, 0o644)


class Sealer:
    """A worker's packs on their way to disk: ``open`` takes a free buffer (waiting while all
    are being written), ``seal`` hands a pack to the sealing thread, ``flush`` waits for them."""

    def __init__(self, buffers: int = BUFFERS) -> None:
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        for _ in range(buffers):
            self._free.put(mmap.mmap(-1, CAPACITY))
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="seal")
        self._sealing: list[DirectPack] = []
        self._pending: list[tuple[int, Future[Any]]] = []  # (run, its seal)

    def open(self, temp: str, folder: str, algorithm: str) -> DirectPack:
        return DirectPack(temp, folder, algorithm, self._free.get(), self)

    def has(self, digest: str) -> bool:
        return any(digest in pack.entries for pack in list(self._sealing))

    def drop(self, pack: DirectPack) -> None:
        """Discard ``pack`` (its job failed) and free its buffer."""
        try:
            pack.discard()
        finally:
            self._free.put(pack.buffer)

    def seal(
        self, pack: DirectPack, run: int, stopped: Callable[[], bool], landed: Callable[[str], None]
    ) -> None:
        """Seal ``pack`` on the sealing thread, then call ``landed`` with its path; a pack of
        a run ``stopped`` meanwhile is dropped instead."""
        self._sealing.append(pack)

        def work() -> None:
            try:
                if stopped():
                    pack.discard()
                    return
                path = pack.seal()
                if path is not None:
                    landed(path)
            finally:
                self._sealing.remove(pack)
                self._free.put(pack.buffer)

        self._pending = [(r, f) for r, f in self._pending if r == run or not f.done()]
        self._pending.append((run, self._thread.submit(work)))

    def flush(self, run: int) -> None:
        """Wait until every pack handed over has landed; raise the first failure of ``run``'s."""
        pending, self._pending = self._pending, []
        failure: BaseException | None = None
        for of, future in pending:
            exc = future.exception()
            if exc is not None and of == run and failure is None:
                failure = exc
        if failure is not None:
            raise failure
