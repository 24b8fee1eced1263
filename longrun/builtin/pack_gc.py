"""Collecting a store's packs: a pack with no live blob goes; one mostly dead is rewritten."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from longrun.builtin.content_hash import new_hasher
from longrun.builtin.durability import fsync_dir
from longrun.builtin.pack_file import Entry, PackInvalid, PackWriter, read_footer

__all__ = ["REPACK_DEAD", "collect_packs"]

REPACK_DEAD = 0.25  # a pack whose unreferenced bytes are at least this share is rewritten


def collect_packs(packs: Path, tmp: Path, live: set[str], cutoff: float) -> int:
    """Remove the packs in ``packs`` none of whose blobs is in ``live``, and rewrite those
    whose dead bytes reach ``REPACK_DEAD`` of their contents with their live blobs only (a
    rotation of snapshots leaves the old versions of changed files dead inside packs that stay
    live). Only packs last written or touched before ``cutoff`` (a take may have just found
    content in a younger one); a pack that cannot be read, or whose live content does not match
    its digests, is left as it is. Returns how many blobs went."""
    removed = 0
    for pack in sorted(packs.glob("*.pack")):
        with contextlib.suppress(FileNotFoundError, PackInvalid):
            if pack.stat().st_mtime >= cutoff:
                continue
            algorithm, entries = read_footer(str(pack))
            kept = [entry for entry in entries if entry[0] in live]
            dead = sum(size for digest, _, size in entries if digest not in live)
            if not kept:
                pack.unlink()
                removed += len(entries)
            elif (
                dead >= REPACK_DEAD * sum(size for _, _, size in entries)
                and dead
                and _rewrite(pack, tmp, algorithm, kept, cutoff)
            ):
                removed += len(entries) - len(kept)
    return removed


def _rewrite(pack: Path, tmp: Path, algorithm: str, kept: list[Entry], cutoff: float) -> bool:
    """Copy ``kept`` (each checked against its digest) into a new pack, make it durable, then
    remove ``pack`` unless a take touched it meanwhile (both then stay: the same live content
    twice, never none). False, changing nothing, when a blob does not match its digest."""
    writer = PackWriter(f"{tmp}/repack-{secrets.token_hex(8)}", str(pack.parent), algorithm)
    try:
        fd = os.open(pack, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for digest, offset, size in kept:
                data = os.pread(fd, size, offset)
                if len(data) != size or new_hasher(algorithm, data).hexdigest() != digest:
                    writer.discard()
                    return False
                writer.append(digest, memoryview(data))
        finally:
            os.close(fd)
        new = writer.seal()
    except BaseException:
        writer.discard()
        raise
    if new is not None:  # on disk, and named, before the old copy goes
        fd = os.open(new, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(pack.parent)
    if pack.stat().st_mtime < cutoff:
        pack.unlink()
    return True
