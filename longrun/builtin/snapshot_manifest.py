"""What a snapshot holds: its manifest (files with their content hashes, directories), checked as
it is read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from longrun.builtin.content_hash import ALGORITHMS, LEGACY

__all__ = ["FileEntry", "Manifest", "encode_entry"]


@dataclass(frozen=True)
class FileEntry:
    """One file of a snapshot: its path relative to the source, and what to restore."""

    path: str
    size: int
    mode: int
    mtime_ns: int
    digest: str  # the content hash, by the manifest's algorithm: the name of its blob


def encode_entry(entry: FileEntry) -> str:
    """A file entry as its manifest's JSON holds it (a take encodes each as its file is stored,
    not all at the end)."""
    return json.dumps(vars(entry), separators=(",", ":"))


@dataclass
class Manifest:
    """What a snapshot holds: directories (with modes) and files (with content hashes, all of
    one algorithm, ``hash``; a manifest that names none is SHA-256, the first format)."""

    id: str
    compartment_id: str
    source: str
    kind: str  # "dir" or "file"
    created: float
    files: list[FileEntry] = field(default_factory=list)
    dirs: list[tuple[str, int]] = field(default_factory=list)  # (relative path, mode)
    hash: str = LEGACY

    @property
    def size(self) -> int:
        """The logical size: the sum of the file sizes."""
        return sum(f.size for f in self.files)

    def to_json(self, files: list[str] | None = None) -> str:
        """The manifest's JSON; ``files``: its files' ``encode_entry``, when they were encoded
        already (the same text)."""
        head = {k: v for k, v in vars(self).items() if k not in ("files", "dirs")}
        if files is None:
            files = [encode_entry(f) for f in self.files]
        return (
            json.dumps(head, separators=(",", ":"))[:-1]
            + ',"files":['
            + ",".join(files)
            + '],"dirs":'
            + json.dumps([list(d) for d in self.dirs], separators=(",", ":"))
            + "}"
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        for entry in raw["files"]:
            if "sha256" in entry:  # the first format's name for the digest
                entry["digest"] = entry.pop("sha256")
        raw["files"] = [FileEntry(**f) for f in raw["files"]]
        raw["dirs"] = [tuple(d) for d in raw["dirs"]]
        if raw.get("hash", LEGACY) not in ALGORITHMS:
            raise ValueError(f"unknown content hash {raw['hash']!r}")
        for path in [f.path for f in raw["files"]] + [d[0] for d in raw["dirs"][1:]]:
            _check_path(path)
        for entry in raw["files"]:
            if not _DIGEST.fullmatch(entry.digest):
                raise ValueError(f"{entry.path}: {entry.digest!r} is not a content hash")
        return cls(**raw)


_DIGEST = re.compile(r"[0-9a-f]{64}")  # SHA-256 and BLAKE3 alike: 32 bytes, in hex


def _check_path(path: str) -> None:
    """A path of a manifest stays inside the directory it is applied to: relative, with no
    ``..``, ``.`` or empty part (a manifest is read from disk, so it is checked, not trusted)."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path!r} is not a relative path inside the snapshot")
