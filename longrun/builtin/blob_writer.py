"""Storing one file's content as a blob by its content hash: light, for take's worker processes."""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from longrun.builtin.content_hash import DEFAULT, Hasher, new_hasher
from longrun.builtin.write_behind import start_writeback

if TYPE_CHECKING:
    from longrun.builtin.direct_pack import DirectPack
    from longrun.builtin.pack_index import PackIndex

__all__ = ["CHUNK", "BlobWriter", "Tick", "chunk_buffer", "copy_hashing", "write_all"]

CHUNK = 1 << 20  # bytes read and written at a time: the granularity of progress and cancel

Tick = Callable[[int], None]  # called with the bytes just moved; may raise to stop

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_local = threading.local()
_pid = os.getpid()  # in temp names; a forked child refreshes it (no getpid syscall per blob)


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def chunk_buffer() -> mmap.mmap:
    """This thread's chunk buffer (anonymous memory, page-aligned): allocating 1 MiB per file
    costs more than copying a small file."""
    buffer: mmap.mmap | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = mmap.mmap(-1, CHUNK)
    return buffer


def write_all(fd: int, data: memoryview) -> None:
    """Write all of ``data``, however many calls it takes."""
    while data:
        data = data[os.write(fd, data) :]


def copy_hashing(
    src: int, dst: int, hasher: Hasher, tick: Tick | None = None, limit: int = -1
) -> int:
    """Copy what is left to read of ``src`` (at most ``limit`` bytes, when not -1) to ``dst``
    (file descriptors) through this thread's buffer, feeding ``hasher`` as it goes; returns the
    bytes copied."""
    buffer = chunk_buffer()
    view = memoryview(buffer)
    size = 0
    while limit < 0 or size < limit:
        read = os.readv(src, [view if limit < 0 else view[: min(CHUNK, limit - size)]])
        if not read:
            break
        hasher.update(view[:read])
        write_all(dst, view[:read])
        size += read
        if tick is not None:
            tick(read)
    return size


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class BlobWriter:
    """Writes blobs ``<blobs>/ab/<digest>`` by way of temp files ``<tmp>/<prefix>-<pid>-<n>``,
    naming each by its ``algorithm`` digest (``content_hash``). While ``pack`` is set, a new
    small blob is appended to it instead (``pack_file``); ``index``, when set, is where packed
    content is looked up, so that it is not stored again."""

    def __init__(self, blobs: str, tmp: str, prefix: str, algorithm: str = DEFAULT) -> None:
        self.blobs, self.tmp, self.prefix = blobs, tmp, prefix
        self.algorithm = algorithm
        self.pack: DirectPack | None = None
        self.index: PackIndex | None = None
        new_hasher(algorithm)  # an unknown algorithm fails here, not at the first file
        self._count = itertools.count()  # next() on a count is atomic across threads

    def blob(self, digest: str) -> str:
        return f"{self.blobs}/{digest[:2]}/{digest}"

    def temp(self, suffix: str = "") -> str:
        # unique without a random draw per file: the prefix, the process, a count
        return f"{self.tmp}/{self.prefix}-{_pid}-{next(self._count)}{suffix}"

    def put(
        self, fd: int, tick: Tick | None = None, limit: int = -1
    ) -> tuple[str, int, bool, int]:
        """Store the content read from ``fd`` (at most ``limit`` bytes, when not -1); returns
        (digest, size, stored, bytes written) — stored is False when the blob was already
        there (deduplicated). Reads into this thread's buffer: each byte is read once for both
        the hash and the copy (into the pack's own buffer, when packing); a new blob's writeback
        starts as soon as it is written (``start_writeback``)."""
        pack = self.pack
        view = memoryview(chunk_buffer()) if pack is None else pack.room()
        read = os.readv(fd, [view if limit < 0 else view[: min(CHUNK, limit)]])
        if tick is not None:
            tick(read)
        if read < CHUNK:  # a small file: hash it first, write it only if it is new
            digest = new_hasher(self.algorithm, view[:read]).hexdigest()
            if self.touch(digest):
                return digest, read, False, 0
            if pack is not None:
                pack.commit(digest, read)
            else:
                self._put_new(view[:read], digest)
            return digest, read, True, read
        hasher = new_hasher(self.algorithm, view)
        temp = self.temp(".blob")
        out = os.open(temp, _CREATE, 0o644)
        size = read
        try:
            try:
                write_all(out, view[:read])  # before the buffer is reused
                size += copy_hashing(fd, out, hasher, tick, -1 if limit < 0 else limit - read)
                digest = hasher.hexdigest()
                stored = not self.touch(digest)
                if stored:  # a copy of stored content is not written out: its pages go with it
                    start_writeback(out)
            finally:
                os.close(out)
            if not stored:
                _unlink(temp)
                return digest, size, False, 0
            self._move(temp, digest)
            return digest, size, True, size
        except BaseException:
            _unlink(temp)
            raise

    def touch(self, digest: str) -> bool:
        """Whether content ``digest`` is there (a blob, or in a pack); a fresh mtime keeps it
        out of a concurrent gc."""
        if self.pack is not None and self.pack.has(digest):
            return True
        if self.index is not None and self.index.touch(digest):
            return True
        try:
            os.utime(self.blob(digest))
        except FileNotFoundError:
            return False
        except OSError:  # not ours to touch: it is there all the same
            return os.path.exists(self.blob(digest))
        return True

    def place(self, temp: str, digest: str) -> bool:
        """Move a verified temp file into place as blob ``digest``; False if it already was
        (the temp file is then removed)."""
        if self.touch(digest):
            _unlink(temp)
            return False
        self._move(temp, digest)
        return True

    def _move(self, temp: str, digest: str) -> None:
        """Rename ``temp`` to blob ``digest``, making its shard folder the first time one is
        needed (a store makes them as blobs come: most small content goes into packs)."""
        try:
            os.replace(temp, self.blob(digest))
        except FileNotFoundError:
            if not os.path.exists(temp):
                raise
            os.makedirs(f"{self.blobs}/{digest[:2]}", exist_ok=True)
            os.replace(temp, self.blob(digest))

    def _put_new(self, data: memoryview, digest: str) -> None:
        """Write a blob found missing: a concurrent writer of the same content writes the same
        bytes, so replacing its blob is harmless (no second existence check)."""
        temp = self.temp(".blob")
        fd = os.open(temp, _CREATE, 0o644)
        try:
            try:
                write_all(fd, data)
                start_writeback(fd)
            finally:
                os.close(fd)
            self._move(temp, digest)
        except BaseException:
            _unlink(temp)
            raise
