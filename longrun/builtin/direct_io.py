"""Writing new blobs around the page cache (``O_DIRECT``) where the file system allows it."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os

__all__ = ["PAGE", "DirectWrites", "aligned_buffer", "write_all"]

PAGE = 4096  # O_DIRECT wants buffers, offsets and lengths in multiples of this
_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux; elsewhere every write goes through the cache


def aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned buffer of ``size`` bytes (anonymous memory), fit for ``O_DIRECT``."""
    return mmap.mmap(-1, size)


def write_all(fd: int, data: memoryview) -> None:
    """Write all of ``data``, however many calls it takes."""
    while data:
        data = data[os.write(fd, data) :]


class DirectWrites:
    """Creates and writes a store's new files with ``O_DIRECT``: the page-aligned bulk of a
    blob goes from the reader's buffer to the disk, with no copy into the page cache and no
    page to allocate (or reclaim from others) and write back later; a tail shorter than a
    page goes through the cache. A file system that refuses (tmpfs, ``EINVAL``) turns it off
    for good, and every later file is written the ordinary way.
    """

    def __init__(self) -> None:
        self.enabled = bool(_O_DIRECT)

    def create(self, path: str, flags: int, size_hint: int) -> tuple[int, bool]:
        """Open ``path`` with ``flags`` (plus ``O_DIRECT`` when it pays: ``size_hint`` of at
        least a page); returns (fd, whether direct)."""
        if self.enabled and size_hint >= PAGE:
            try:
                return os.open(path, flags | _O_DIRECT, 0o644), True
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self.enabled = False
        return os.open(path, flags, 0o644), False

    def write(self, fd: int, data: memoryview, direct: bool) -> bool:
        """Write all of ``data`` (page-aligned in memory when ``direct``) at the file's offset
        (page-aligned when ``direct``); returns whether ``fd`` is still direct."""
        if direct:
            aligned = len(data) - len(data) % PAGE
            written = 0
            if aligned:
                try:
                    written = os.write(fd, data[:aligned])
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self.enabled = False
            data = data[written:]
            if not data:
                return True
            # a tail (or a refused or short write): the rest goes through the page cache
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)
        write_all(fd, data)
        return False
