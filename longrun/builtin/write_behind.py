"""Starting a new file's writeback at once, without waiting for it (``sync_file_range``)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable

__all__ = ["start_writeback"]

_SYNC_FILE_RANGE_WRITE = 2  # start writing the dirty pages out; do not wait for them


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _libc_sync_file_range()
_FADVISE = getattr(os, "posix_fadvise", None)


def start_writeback(fd: int) -> None:
    """Hand the pages just written to ``fd`` to the disk now, not in 30 s: the disk then writes
    while later files are read and hashed, in large requests many at a time, and the final
    sync of the file system has little left to wait for. Durability is still that sync's job."""
    if _SYNC_FILE_RANGE is not None and _SYNC_FILE_RANGE(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) == 0:
        return
    if _FADVISE is not None:  # Linux starts writeback for DONTNEED too (then drops the pages)
        with contextlib.suppress(OSError):  # advice only: a file that takes none is fine
            _FADVISE(fd, 0, 0, os.POSIX_FADV_DONTNEED)
