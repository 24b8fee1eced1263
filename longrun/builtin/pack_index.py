"""Where each packed blob is: the records of a store's ``packs/`` read once, then as they appear."""

from __future__ import annotations

import os
import threading
import time

from longrun.builtin.pack_file import PackInvalid, Record, read_records

__all__ = ["Location", "PackIndex"]

Location = tuple[str, int, int]  # (pack path, offset, size)

_SHIFT = 40  # a location in one int: pack number, offset and size, 40 bits each (1 TiB)
_MASK = (1 << _SHIFT) - 1


class PackIndex:
    """The packs of one ``packs/`` folder, by digest. ``refresh`` reads the records of packs new
    since the last one (a listing, and one read per new pack) and forgets packs gone; a folder
    whose mtime has not moved for a second is not listed again. Threads may share one: a
    refresh and an add hold its lock, and a lookup reads one dict entry.

    Compact, since every process that stores or reads packed content holds one: a digest's 32
    bytes mapping to one int (about 140 bytes an entry, against some 330 for hex strings and
    tuples)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.packs: dict[str, int] = {}  # pack name -> its number (in _paths)
        self.invalid: dict[str, str] = {}  # pack name -> why it cannot be read
        self._paths: list[str] = []  # by pack number
        self._where: dict[bytes, int] = {}
        self._seen: int | None = None  # the folder's mtime at the last listing

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            self._refresh(force)

    def _refresh(self, force: bool) -> None:
        try:
            st = os.stat(self.folder)
        except FileNotFoundError:
            self._reset()
            return
        # a rename within the same clock tick leaves the mtime as it was: a folder changed less
        # than a second ago is listed again, whatever its mtime says
        settled = st.st_mtime < time.time() - 1.0
        if not force and self._seen == st.st_mtime_ns and settled:
            return
        self._seen = st.st_mtime_ns
        names = {n for n in os.listdir(self.folder) if n.endswith(".pack")}
        if (set(self.packs) | set(self.invalid)) - names:
            # a pack went (collected, or rewritten): its blobs may be in another pack the index
            # holds no location of (it keeps one per digest), so every pack is read again
            self._reset()
            self._seen = st.st_mtime_ns
        for name in sorted(names - set(self.packs) - set(self.invalid)):
            path = f"{self.folder}/{name}"
            try:
                _, records = read_records(path)
            except FileNotFoundError:
                continue
            except PackInvalid as exc:
                self.invalid[name] = str(exc)
                continue
            self.add(path, records)

    def add(self, path: str, records: list[Record]) -> None:
        """A pack and its records (read, or known to the process that just sealed it)."""
        with self._lock:
            self._add(path, records)

    def _add(self, path: str, records: list[Record]) -> None:
        number = len(self._paths)
        self._paths.append(path)
        self.packs[os.path.basename(path)] = number
        where = self._where
        base = number << (2 * _SHIFT)
        for digest, offset, size in records:
            where.setdefault(digest, base | offset << _SHIFT | size)

    def locate(self, digest: str) -> Location | None:
        """Where ``digest`` (hex) is, as of the last ``refresh``."""
        found = self._where.get(bytes.fromhex(digest))
        if found is None:
            return None
        return self._paths[found >> (2 * _SHIFT)], (found >> _SHIFT) & _MASK, found & _MASK

    def touch(self, digest: str) -> bool:
        """Whether ``digest`` is in a pack; a fresh mtime keeps that pack out of a concurrent
        gc (as a blob file's does)."""
        where = self.locate(digest)
        if where is None:
            return False
        try:
            os.utime(where[0])
        except FileNotFoundError:
            self._where.pop(bytes.fromhex(digest), None)
            return False
        except OSError:  # not ours to touch: it is there all the same
            return os.path.exists(where[0])
        return True
