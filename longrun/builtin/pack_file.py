"""Pack files: many small blobs in one file, with an index of them in its footer.

A pack is the blobs' contents end to end, and zeros after them where its length must be whole
4 KiB blocks (a take's packs, written past the page cache: ``direct_pack``); then one 48-byte record per blob (its digest's 32
bytes, its offset and size, little-endian); then a JSON header (the content hash, the number of
records); then 16 bytes: the header's length and ``MAGIC``. Records, not JSON, so that reading
the index of a store of a million small files costs a ``struct`` pass, not a parse. A pack is
written in the store's ``tmp/`` and renamed into ``packs/`` once sealed, so a pack in ``packs/``
is always whole. One file per job instead of one per small
file: the kernel creates, names and writes back a few hundred files per GiB, not ten thousand.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct

from longrun.builtin.blob_writer import write_all
from longrun.builtin.write_behind import start_writeback

__all__ = ["MAGIC", "PackInvalid", "PackWriter", "footer", "read_footer", "read_records"]

MAGIC = b"LRPACK02"
_TRAILER = struct.Struct("<Q8s")  # the header's length, MAGIC
_RECORD = struct.Struct("<32sQQ")  # digest, offset, size
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

Entry = tuple[str, int, int]  # (hex digest, offset, size)
Record = tuple[bytes, int, int]  # (digest, offset, size)


def footer(records: list[Record], algorithm: str) -> bytes:
    """What follows a pack's contents: the records, the header and the trailer."""
    header = json.dumps({"hash": algorithm, "blobs": len(records)}, separators=(",", ":"))
    encoded = header.encode("ascii")
    return (
        b"".join(_RECORD.pack(*record) for record in records)
        + encoded
        + _TRAILER.pack(len(encoded), MAGIC)
    )


def listed(entries: dict[str, tuple[int, int]]) -> list[Record]:
    """Records of ``entries`` (hex digest -> (offset, size))."""
    return [(bytes.fromhex(d), o, s) for d, (o, s) in entries.items()]


class PackInvalid(Exception):
    """A file in ``packs/`` that is not a whole pack (named in the message)."""


class PackWriter:
    """Appends blobs to the temp file ``temp``; ``seal`` moves it into ``folder`` as a pack
    (through the page cache: the collection's rewrites; a take's packs: ``direct_pack``)."""

    def __init__(self, temp: str, folder: str, algorithm: str) -> None:
        self.temp, self.folder, self.algorithm = temp, folder, algorithm
        self.entries: dict[str, tuple[int, int]] = {}  # digest -> (offset, size)
        self._fd: int | None = None
        self._end = 0

    def append(self, digest: str, data: memoryview) -> None:
        """Add one blob's content (the caller hashed it: ``digest``)."""
        if self._fd is None:
            self._fd = os.open(self.temp, _CREATE, 0o644)
        write_all(self._fd, data)
        self.entries[digest] = (self._end, len(data))
        self._end += len(data)

    def listed(self) -> list[Record]:
        """What the records say: (digest, offset, size) of each blob appended."""
        return listed(self.entries)

    def seal(self) -> str | None:
        """Write the records, the header and the trailer, start the writeback and move the
        pack into place; its path (None when nothing was appended: no file)."""
        if self._fd is None:
            return None
        fd, self._fd = self._fd, None
        try:
            write_all(fd, memoryview(footer(self.listed(), self.algorithm)))
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


def read_records(path: str) -> tuple[str, list[Record]]:
    """A pack's content hash and records; raises ``PackInvalid`` (or ``FileNotFoundError``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size < _TRAILER.size:
            raise PackInvalid(f"{path}: too short to be a pack ({size} bytes)")
        length, magic = _TRAILER.unpack(os.pread(fd, _TRAILER.size, size - _TRAILER.size))
        header_at = size - _TRAILER.size - length
        if magic != MAGIC or header_at < 0:
            raise PackInvalid(f"{path}: no pack trailer at its end")
        header = json.loads(os.pread(fd, length, header_at))
        algorithm, count = str(header["hash"]), int(header["blobs"])
        records_at = header_at - count * _RECORD.size
        if count < 0 or records_at < 0:
            raise PackInvalid(f"{path}: its header counts more records than it holds")
        raw = os.pread(fd, count * _RECORD.size, records_at)
    except (ValueError, KeyError, TypeError) as exc:
        raise PackInvalid(f"{path}: its header cannot be read ({exc})") from None
    finally:
        os.close(fd)
    records = list(_RECORD.iter_unpack(raw))
    if any(o + s > records_at for _, o, s in records):
        raise PackInvalid(f"{path}: a record points past the contents")
    return algorithm, records


def read_footer(path: str) -> tuple[str, list[Entry]]:
    """A pack's content hash and entries, digests in hex (``read_records``)."""
    algorithm, records = read_records(path)
    return algorithm, [(d.hex(), o, s) for d, o, s in records]
