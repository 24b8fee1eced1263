"""Where each packed blob is: the footers of a store's ``packs/`` read once, then as they appear."""

from __future__ import annotations

import os
import time

from longrun.builtin.pack_file import Entry, PackInvalid, read_footer

__all__ = ["PackIndex"]

Location = tuple[str, int, int]  # (pack path, offset, size)


class PackIndex:
    """The packs of one ``packs/`` folder by digest. ``refresh`` reads the footers of packs new
    since the last one (a listing, and one footer per new pack) and forgets packs gone; a
    folder whose mtime has not moved for a second is not listed again."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.packs: dict[str, list[Entry]] = {}  # pack name -> its entries
        self.invalid: dict[str, str] = {}  # pack name -> why it cannot be read
        self._where: dict[str, Location] = {}
        self._seen: int | None = None  # the folder's mtime at the last listing

    def refresh(self, force: bool = False) -> None:
        try:
            st = os.stat(self.folder)
        except FileNotFoundError:
            self.packs, self.invalid, self._where, self._seen = {}, {}, {}, None
            return
        # a rename within the same clock tick leaves the mtime as it was: a folder changed less
        # than a second ago is listed again, whatever its mtime says
        settled = st.st_mtime < time.time() - 1.0
        if not force and self._seen == st.st_mtime_ns and settled:
            return
        self._seen = st.st_mtime_ns
        names = {n for n in os.listdir(self.folder) if n.endswith(".pack")}
        gone = (set(self.packs) | set(self.invalid)) - names
        for name in gone:
            self.packs.pop(name, None)
            self.invalid.pop(name, None)
        if gone:
            self._where = {d: w for d, w in self._where.items() if os.path.basename(w[0]) in names}
        for name in sorted(names - set(self.packs) - set(self.invalid)):
            path = f"{self.folder}/{name}"
            try:
                _, entries = read_footer(path)
            except FileNotFoundError:
                continue
            except PackInvalid as exc:
                self.invalid[name] = str(exc)
                continue
            self.packs[name] = entries
            for digest, offset, size in entries:
                self._where.setdefault(digest, (path, offset, size))

    def add(self, path: str, entries: list[Entry]) -> None:
        """A pack this process just sealed (known without reading its footer back)."""
        self.packs[os.path.basename(path)] = entries
        for digest, offset, size in entries:
            self._where.setdefault(digest, (path, offset, size))

    def locate(self, digest: str) -> Location | None:
        """Where ``digest`` is, as of the last ``refresh``."""
        return self._where.get(digest)

    def touch(self, digest: str) -> bool:
        """Whether ``digest`` is in a pack; a fresh mtime keeps that pack out of a concurrent
        gc (as a blob file's does)."""
        where = self._where.get(digest)
        if where is None:
            return False
        try:
            os.utime(where[0])
        except FileNotFoundError:
            self._where.pop(digest, None)
            return False
        except OSError:  # not ours to touch: it is there all the same
            return os.path.exists(where[0])
        return True

