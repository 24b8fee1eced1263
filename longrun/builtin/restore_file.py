"""Writing one file of a snapshot from its blob, hashing as it goes: light, for worker processes."""

from __future__ import annotations

import os

from longrun.builtin.blob_writer import Tick, copy_hashing
from longrun.builtin.content_hash import new_hasher
from longrun.builtin.write_behind import start_writeback

__all__ = ["BlobGone", "restore_file"]

# O_TRUNC, not O_EXCL: a file a killed worker left half-written in the stage is written again
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class BlobGone(Exception):
    """The blob at ``path`` is not in the store."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def restore_file(
    where: tuple[str, int, int],
    dest: str,
    mode: int,
    mtime_ns: int,
    algorithm: str,
    tick: Tick | None = None,
) -> tuple[str, int]:
    """Write the content ``where`` is (a blob file, or a pack: its path, the offset and the
    size, -1 for all of it) to ``dest`` with ``mode`` and ``mtime_ns``, its writeback
    started; returns the (``algorithm`` hex digest, size) of what was written, for the caller
    to check (content that does not match its name must fail the apply). Raises
    ``BlobGone``."""
    path, offset, length = where
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BlobGone(path) from None
    hasher = new_hasher(algorithm)
    try:
        if offset:
            os.lseek(src, offset, os.SEEK_SET)
        out = os.open(dest, _WRITE, mode)
        try:
            size = copy_hashing(src, out, hasher, tick, length)
            start_writeback(out)  # the apply's sync, before its swap, then has little to wait for
            os.fchmod(out, mode)  # exact, whatever the umask
            os.utime(out, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(out)
    finally:
        os.close(src)
    return hasher.hexdigest(), size
