"""Swapping two paths in one step (``renameat2`` with ``RENAME_EXCHANGE``), where Linux allows."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable

__all__ = ["exchange"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _libc_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    call = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if call is not None:
        call.argtypes = [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint,
        ]
        call.restype = ctypes.c_int
    return call


_RENAMEAT2 = _libc_renameat2()


def exchange(a: os.PathLike[str] | str, b: os.PathLike[str] | str) -> bool:
    """Swap ``a`` and ``b`` (both must exist) atomically: a reader, or a crash, sees one or the
    other at each path, never neither. False where the kernel, the C library or the file system
    cannot (the caller then swaps in two steps); other errors are raised."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # no exchange here
        return False
    raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))
