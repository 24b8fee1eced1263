"""Pack files: many small blobs in one file, with an index of them in its footer.

A pack is the blobs' contents end to end, then a JSON footer (the content hash and, for each
blob, its digest, offset and size), then 16 bytes: the footer's length and ``MAGIC``. A take's
worker writes one pack per job into the store's ``tmp/`` and renames it into ``packs/`` once
sealed, so a pack in ``packs/`` is always whole. One file per job instead of one per small
file: the kernel creates, names and writes back a few hundred files per GiB, not ten thousand.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct

from longrun.builtin.blob_writer import write_all
from longrun.builtin.write_behind import start_writeback

__all__ = ["MAGIC", "PackInvalid", "PackWriter", "read_footer"]

MAGIC = b"LRPACK01"
_TRAILER = struct.Struct("<Q8s")  # the footer's length, MAGIC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

Entry = tuple[str, int, int]  # (digest, offset, size)


class PackInvalid(Exception):
    """A file in ``packs/`` that is not a whole pack (named in the message)."""


class PackWriter:
    """Appends blobs to the temp file ``temp``; ``seal`` moves it into ``folder`` as a pack."""

    def __init__(self, temp: str, folder: str, algorithm: str) -> None:
        self.temp, self.folder, self.algorithm = temp, folder, algorithm
        self.entries: dict[str, tuple[int, int]] = {}  # digest -> (offset, size)
        self._fd: int | None = None
        self._end = 0

    def has(self, digest: str) -> bool:
        return digest in self.entries

    def append(self, digest: str, data: memoryview) -> None:
        """Add one blob's content (the caller hashed it: ``digest``)."""
        if self._fd is None:
            self._fd = os.open(self.temp, _CREATE, 0o644)
        write_all(self._fd, data)
        self.entries[digest] = (self._end, len(data))
        self._end += len(data)

    def listed(self) -> list[Entry]:
        """What the footer lists: (digest, offset, size) of each blob appended."""
        return [(d, o, s) for d, (o, s) in self.entries.items()]

    def seal(self) -> str | None:
        """Write the footer, start the writeback and move the pack into place; its path (None
        when nothing was appended: no file)."""
        if self._fd is None:
            return None
        fd, self._fd = self._fd, None
        try:
            footer = json.dumps(
                {"hash": self.algorithm, "blobs": self.listed()}, separators=(",", ":")
            ).encode("ascii")
            write_all(fd, memoryview(footer + _TRAILER.pack(len(footer), MAGIC)))
            start_writeback(fd)
        finally:
            os.close(fd)
        path = f"{self.folder}/{os.path.basename(self.temp)}.pack"
        os.replace(self.temp, path)
        return path

    def discard(self) -> None:
        """Drop what was appended (the temp file goes)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


def read_footer(path: str) -> tuple[str, list[Entry]]:
    """A pack's content hash and entries; raises ``PackInvalid`` (or ``FileNotFoundError``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size < _TRAILER.size:
            raise PackInvalid(f"{path}: too short to be a pack ({size} bytes)")
        length, magic = _TRAILER.unpack(os.pread(fd, _TRAILER.size, size - _TRAILER.size))
        start = size - _TRAILER.size - length
        if magic != MAGIC or start < 0:
            raise PackInvalid(f"{path}: no pack footer at its end")
        raw = json.loads(os.pread(fd, length, start))
        entries = [(str(d), int(o), int(s)) for d, o, s in raw["blobs"]]
        algorithm = str(raw["hash"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PackInvalid(f"{path}: its footer cannot be read ({exc})") from None
    finally:
        os.close(fd)
    if any(o < 0 or s < 0 or o + s > start for _, o, s in entries):
        raise PackInvalid(f"{path}: its footer points past its content")
    return algorithm, entries
