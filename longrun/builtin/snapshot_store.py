"""A content-addressed snapshot store on disk: content by hash (blob files, packs), manifests."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from longrun.builtin.blob_writer import CHUNK, BlobWriter, Tick, write_all
from longrun.builtin.content_hash import ALGORITHMS, DEFAULT, LEGACY
from longrun.builtin.durability import Flush, Writeback, fsync_dir
from longrun.builtin.pack_gc import collect_packs
from longrun.builtin.pack_index import Location, PackIndex
from longrun.builtin.restore_file import BlobGone
from longrun.builtin.snapshot_manifest import FileEntry, Manifest
from longrun.model import OperationError, new_id

__all__ = [
    "CHUNK",
    "FileEntry",
    "Manifest",
    "SnapshotStore",
    "blob_missing",
]

T = TypeVar("T")

_GC_AGE = 3600.0  # seconds: a blob younger than this may belong to a take still running
_FORMAT = "store.json"  # at the root: the store's format and the content hash new takes use
_PACKED = 3  # the first format whose takes may pack small blobs (``pack_file``)
_FORMATS = (1, 2, _PACKED)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _open_at(where: Location) -> tuple[int, int]:
    path, offset, size = where
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BlobGone(path) from None
    if offset:
        os.lseek(fd, offset, os.SEEK_SET)
    return fd, size


def blob_missing(digest: str, unreadable: dict[str, str] | None = None) -> OperationError:
    """The content is not in the store; ``unreadable`` packs (name -> why) may be where it was."""
    message = f"the snapshot store lacks the content {digest}"
    if unreadable:
        name, why = next(iter(sorted(unreadable.items())))
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        message += f"; {len(unreadable)} pack(s) cannot be read, such as {name}{more}: {why}"
    return OperationError("BlobMissing", message)


class SnapshotStore:
    """One snapshot store rooted at a directory (created on first use).

    Layout: ``store.json``, ``blobs/ab/<digest>``, ``packs/<name>.pack`` (small blobs, many
    to a file, ``pack_file``), ``manifests/<snapshot id>.json``, ``tmp/``. Every file appears
    by ``os.replace`` from ``tmp/``, so a reader never sees a partial blob, pack or snapshot.
    ``store.json`` names the format and the content hash new takes use (``algorithm``): a new
    store is format 3, BLAKE3, and packs; a format-2 store (BLAKE3) writes blob files only, as
    it always did; a store from before the file keeps SHA-256 and blob files, so its new
    snapshots still share content with its old ones. Every store reads every layout, and each
    manifest names its own hash.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.blobs = self.root / "blobs"
        self.manifests = self.root / "manifests"
        self.tmp = self.root / "tmp"
        self.packs = self.root / "packs"
        self._blobs = str(self.blobs)
        self.writer = BlobWriter(self._blobs, str(self.tmp), secrets.token_hex(6))
        self.index = PackIndex(str(self.packs))
        self.writer.index = self.index  # a take on threads finds packed content too
        self.packing = False  # whether new small blobs go into packs (as of the last ensure)

    @property
    def algorithm(self) -> str:
        """The content hash new blobs are named by (as of the last ``ensure``)."""
        return self.writer.algorithm

    def _format(self) -> tuple[int, str]:
        """The store's (format, content hash), from ``store.json`` or what the store holds."""
        try:
            raw = json.loads((self.root / _FORMAT).read_text(encoding="utf-8"))
            version, algorithm = raw["format"], raw["hash"]
        except FileNotFoundError:
            old = self.manifests.is_dir() or self.blobs.is_dir()
            return (1, LEGACY) if old else (_PACKED, DEFAULT)
        except (ValueError, KeyError, TypeError) as exc:
            raise OperationError(
                "SnapshotStoreInvalid", f"{self.root / _FORMAT} is not a store format: {exc}"
            ) from None
        if algorithm not in ALGORITHMS:
            raise OperationError(
                "SnapshotStoreInvalid",
                f"{self.root / _FORMAT} names an unknown content hash {algorithm!r}",
            )
        if version not in _FORMATS:
            raise OperationError(
                "SnapshotStoreInvalid",
                f"{self.root / _FORMAT} names format {version!r}; this longrun reads {_FORMATS}",
            )
        return int(version), str(algorithm)

    def ensure(self) -> SnapshotStore:
        """Create the folders (a blob's shard folder comes with the first blob in it) and the
        format file; raises SnapshotStoreInvalid when that file is not one."""
        version, algorithm = self._format()  # before the folders: a store without them is new
        if not (self.root / _FORMAT).is_file():  # first: no folders without the file
            self.root.mkdir(parents=True, exist_ok=True)
            temp = self.root / f".{_FORMAT}.{secrets.token_hex(6)}"
            temp.write_text(json.dumps({"format": version, "hash": algorithm}))
            os.replace(temp, self.root / _FORMAT)
        for folder in (self.manifests, self.tmp, self.blobs):
            folder.mkdir(exist_ok=True)
        self.packing = version >= _PACKED
        if self.packing:
            self.packs.mkdir(exist_ok=True)
        self.writer.algorithm = algorithm
        return self

    # blobs (str paths and raw descriptors: this is the hot path of a take) -----------------
    def blob_path(self, digest: str) -> Path:
        return Path(self._blob(digest))

    def _blob(self, digest: str) -> str:
        return f"{self._blobs}/{digest[:2]}/{digest}"

    def has_blob(self, digest: str) -> bool:
        """Whether content ``digest`` is here: in a pack (as of the last ``index.refresh``) or
        a blob file."""
        return self.index.locate(digest) is not None or os.path.isfile(self._blob(digest))

    def packs_for_workers(self) -> str:
        """The packs folder a worker process packs new small blobs into ("" for none)."""
        return str(self.packs) if self.packing else ""

    def locate(self, digest: str) -> Location:
        """Where content ``digest`` is: (a pack, its offset, its size), or (its blob file, 0,
        -1); the packs are listed again before it is found missing (``blob_missing``)."""
        where = self.index.locate(digest)
        if where is not None:
            return where
        blob = self._blob(digest)
        if os.path.isfile(blob):
            return blob, 0, -1
        self.index.refresh(force=True)
        where = self.index.locate(digest)
        if where is None:
            raise blob_missing(digest, self.index.invalid)
        return where

    def temp_path(self, suffix: str = "") -> Path:
        return Path(self._temp(suffix))

    def _temp(self, suffix: str = "") -> str:
        return self.writer.temp(suffix)

    def put_file(
        self, fd: int, tick: Tick | None = None, writeback: Writeback | None = None
    ) -> tuple[str, int, bool]:
        """Store the content read from ``fd``; returns (digest, size, stored) — stored is False
        when the blob was already there (deduplicated). See ``BlobWriter.put``; the bytes
        written go to ``writeback`` when one is given."""
        digest, size, stored, written = self.writer.put(fd, tick)
        if writeback is not None and written:
            writeback.wrote(written)
        return digest, size, stored

    def adopt(self, temp: Path | None, digest: str) -> bool:
        """Move a verified temp file into place as blob ``digest``; False if it already was
        (the temp file is then removed)."""
        if temp is None:
            if self.writer.touch(digest):
                return False
            raise OperationError("BlobMissing", f"the content {digest} vanished from the store")
        return self.writer.place(str(temp), digest)

    def reading(self, digest: str, read: Callable[[Location], T]) -> T:
        """``read`` where content ``digest`` is; if that file is gone (``BlobGone``: its pack
        was rewritten since the index was read, ``pack_gc``), once more after listing the packs
        again. Raises ``blob_missing``."""
        for again in (False, True):
            if again:
                self.index.refresh(force=True)
            try:
                return read(self.locate(digest))
            except BlobGone:
                continue
        raise blob_missing(digest, self.index.invalid)

    def open_content(self, digest: str) -> tuple[int, int]:
        """An open descriptor at the start of content ``digest``, and its size (-1: to the end
        of the file); the caller closes it. Raises ``blob_missing``."""
        return self.reading(digest, _open_at)

    # manifests -----------------------------------------------------------------------------
    def new_snapshot_id(self) -> str:
        return f"snap-{new_id()}"

    def flush(self) -> Flush:
        """Start making what was written to this store durable, in the background."""
        return Flush(self.root)

    def publish(
        self, manifest: Manifest, flushing: Flush | None = None, files: list[str] | None = None
    ) -> None:
        """Make the snapshot visible, all at once, only once its content is durable: the file
        system is synced first (``flushing``, when it was started after the last blob was
        written; else now), then the manifest is written, synced and renamed into place, and
        the rename synced in turn. ``files``: the files' JSON, when encoded already."""
        text = manifest.to_json(files).encode("utf-8")  # while the sync runs
        (flushing or self.flush()).wait()
        temp = self._temp(".json")
        fd = os.open(temp, _CREATE, 0o644)
        try:
            try:
                write_all(fd, memoryview(text))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.manifest_path(manifest.id))
        except BaseException:
            _unlink(temp)
            raise
        fsync_dir(self.manifests)

    def manifest_path(self, snapshot_id: str) -> Path:
        if not snapshot_id.startswith("snap-") or "/" in snapshot_id or "\\" in snapshot_id:
            raise OperationError(
                "SnapshotNotFound", f"no snapshot {snapshot_id!r}", target="input.snapshot_id"
            )
        return self.manifests / f"{snapshot_id}.json"

    def has(self, snapshot_id: str) -> bool:
        return self.manifest_path(snapshot_id).is_file()

    def load(self, snapshot_id: str, compartment_id: str | None = None) -> Manifest:
        """The manifest; SnapshotNotFound when absent or outside ``compartment_id``."""
        try:
            manifest = Manifest.from_json(
                self.manifest_path(snapshot_id).read_text(encoding="utf-8")
            )
        except FileNotFoundError:
            manifest = None
        except (ValueError, KeyError, TypeError) as exc:
            raise OperationError(
                "SnapshotStoreInvalid",
                f"the manifest of {snapshot_id!r} is not one this store can read: {exc}",
                target="input.snapshot_id",
            ) from None
        if manifest is None or (
            compartment_id is not None and manifest.compartment_id != compartment_id
        ):
            raise OperationError(
                "SnapshotNotFound", f"no snapshot {snapshot_id!r}", target="input.snapshot_id"
            )
        return manifest

    def list(self, compartment_id: str | None = None) -> list[Manifest]:
        """Every snapshot (of one compartment), oldest first."""
        if not self.manifests.is_dir():
            return []
        found = []
        for path in sorted(self.manifests.glob("snap-*.json")):
            with contextlib.suppress(FileNotFoundError, ValueError):
                manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
                if compartment_id is None or manifest.compartment_id == compartment_id:
                    found.append(manifest)
        return found

    def remove(self, snapshot_id: str) -> bool:
        """Delete one manifest; its blobs stay until ``gc``. False when it was not there."""
        try:
            self.manifest_path(snapshot_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def gc(self, min_age: float = _GC_AGE) -> int:
        """Delete content no manifest references, older than ``min_age`` s (a take may still
        be writing younger): blob files, and packed blobs (``pack_gc``: a dead pack goes, one
        mostly dead is rewritten with its live blobs). Returns how many contents went. SnapshotStoreInvalid, removing nothing, when a manifest cannot be
        read: the content it names would look unreferenced."""
        live = self._live()
        cutoff = time.time() - min_age
        removed = 0
        for blob in self._all_blobs():
            if blob.name not in live and blob.stat().st_mtime < cutoff:
                blob.unlink(missing_ok=True)
                removed += 1
        removed += collect_packs(self.packs, self.tmp, live, cutoff)
        for temp in self.tmp.iterdir() if self.tmp.is_dir() else ():
            if temp.stat().st_mtime < cutoff:  # what a killed take or copy left
                temp.unlink(missing_ok=True)
        self.index.refresh(force=True)
        return removed

    def _live(self) -> set[str]:
        """The digests every manifest names; raises on one it cannot read."""
        live: set[str] = set()
        for path in sorted(self.manifests.glob("snap-*.json")) if self.manifests.is_dir() else ():
            try:
                manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError) as exc:
                raise OperationError(
                    "SnapshotStoreInvalid",
                    f"{path} cannot be read ({exc}); no blob is collected while it might name it",
                ) from None
            live.update(f.digest for f in manifest.files)
        return live

    def _all_blobs(self) -> Iterator[Path]:
        if self.blobs.is_dir():
            for folder in self.blobs.iterdir():
                yield from folder.iterdir()
