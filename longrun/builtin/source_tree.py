"""What a take reads: the source's files and folders, and the signs that one changed meanwhile."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from longrun.model import OperationError

__all__ = ["changed", "file_names", "same", "scan"]


def changed(path: str, what: str) -> OperationError:
    """The error of a take whose source was edited: ``SourceChanged``, naming the path."""
    return OperationError(
        "SourceChanged", f"{path} {what} while the snapshot was taken", target=path
    )


def scan(source: Path) -> tuple[str, dict[str, os.stat_result], list[tuple[str, int]]]:
    """(kind, files by relative path with their stat, directories with modes)."""
    try:
        top = source.stat()
    except FileNotFoundError:
        raise OperationError(
            "SourceNotFound", f"no such file or directory: {source}", target="input.source"
        ) from None
    if stat.S_ISREG(top.st_mode):
        return "file", {source.name: top}, [(".", 0o755)]
    files: dict[str, os.stat_result] = {}
    dirs = [(".", stat.S_IMODE(top.st_mode))]
    for rel, entry in _entries(str(source)):
        if entry.is_dir(follow_symlinks=False):
            dirs.append((rel, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)))
        elif entry.is_file(follow_symlinks=False):
            files[rel] = entry.stat(follow_symlinks=False)
    return "dir", files, dirs


def file_names(source: Path) -> set[str]:
    """The regular files under ``source`` now, by relative path: from the directory entries'
    types alone, unsorted, with no stat per file (the end-of-take check for files that came
    or went)."""
    if not source.is_dir():
        return {source.name} if source.is_file() else set()
    found: set[str] = set()
    folders = [(str(source), "")]
    while folders:
        top, prefix = folders.pop()
        try:
            with os.scandir(top) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((entry.path, f"{prefix}{entry.name}/"))
                    elif entry.is_file(follow_symlinks=False):
                        found.add(prefix + entry.name)
        except (FileNotFoundError, NotADirectoryError):  # it went meanwhile: its files are missed
            continue
    return found


def _entries(top: str, prefix: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under ``top`` (relative path, entry), in os.walk's top-down sorted order:
    a folder's entries, then each of its subfolders'. Symlinks are not followed."""
    try:
        with os.scandir(top) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):  # it went meanwhile: its files are missed
        return
    folders = []
    for entry in entries:
        yield prefix + entry.name, entry
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry)
    for folder in folders:
        yield from _entries(folder.path, f"{prefix}{folder.name}/")


def same(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stats of a file show the same file, unchanged (size, mtime, inode)."""
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)
