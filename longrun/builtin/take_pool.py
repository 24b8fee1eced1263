"""Take's and copy's jobs for the worker processes: batches of files or contents read, hashed and
stored."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable, Sequence
from typing import Any

from longrun.builtin import worker_pool
from longrun.builtin.blob_writer import BlobWriter
from longrun.builtin.durability import Writeback
from longrun.builtin.meter import Meter
from longrun.builtin.pack_index import PackIndex
from longrun.builtin.source_tree import changed

__all__ = ["MIN_BYTES", "MIN_FILES", "batches", "copy_contents", "pays", "store_files"]

MIN_BYTES = 64 << 20  # below this a run stays on threads: the hand-offs would not pay
MIN_FILES = 8
_BATCH_BYTES = 4 << 20  # a job: files up to this many bytes (or a single larger file)
_BATCH_FILES = 64

Files = Sequence[tuple[str, os.stat_result]]


def pays(total: int, files: int, throttled: bool) -> bool:
    """Whether a run of ``total`` bytes in ``files`` files should use the processes."""
    return total >= MIN_BYTES and files >= MIN_FILES and not throttled


def batches(items: Sequence[Any], size_of: Any) -> list[list[Any]]:
    """Consecutive items grouped into jobs of about ``_BATCH_BYTES`` (``size_of`` each)."""
    grouped: list[list[Any]] = []
    current: list[Any] = []
    size = 0
    for item in items:
        current.append(item)
        size += size_of(item)
        if size >= _BATCH_BYTES or len(current) >= _BATCH_FILES:
            grouped.append(current)
            current, size = [], 0
    if current:
        grouped.append(current)
    return grouped


def store_files(
    writer: BlobWriter,
    packs: str,
    meter: Meter,
    writeback: Writeback,
    base: str,
    files: Files,
    processes: int,
    done: dict[str, tuple[str, int]],
    each: Callable[[str, str, int], None] | None = None,
) -> None:
    """Store ``files`` (relative to ``base``, largest first) with the worker processes (new
    small ones packed into ``packs``, one pack per job, unless it is ""), recording each stored
    file's (digest, size) in ``done`` as its job comes back (and telling ``each``, with the
    file's name, meanwhile). Raises ``worker_pool.Unavailable`` when the processes cannot do it
    (``done`` then holds what they did; the caller does the rest)."""
    head = ("store", writer.blobs, writer.tmp, writer.prefix, writer.algorithm, packs, base)
    jobs = [
        ((*head, [(rel, st.st_size, st.st_mtime_ns, st.st_ino) for rel, st in batch]), batch)
        for batch in batches(files, lambda item: item[1].st_size)
    ]

    def on_reply(batch: list[tuple[str, os.stat_result]], reply: tuple[Any, ...]) -> None:
        if reply[0] == "changed":
            raise changed(reply[1], reply[2])
        _record(meter, writeback, [rel for rel, _ in batch], reply, done)
        if each is not None:
            for (rel, _), (digest, size, _) in zip(batch, reply[1], strict=True):
                each(rel, digest, size)

    _dispatch(writer, packs, meter, jobs, on_reply, processes, done)


Contents = Sequence[tuple[str, tuple[str, int, int], int]]  # (digest, where, size)


def copy_contents(
    writer: BlobWriter,
    packs: str,
    meter: Meter,
    writeback: Writeback,
    contents: Contents,
    processes: int,
    done: dict[str, tuple[str, int]],
) -> None:
    """Store another store's ``contents`` (each where it lies there: a blob file, or a range
    of a pack) with the worker processes, as ``store_files`` does files: ``done`` maps each
    name copied to the (digest, size) its bytes hashed to, for the caller to compare."""
    head = ("copy", writer.blobs, writer.tmp, writer.prefix, writer.algorithm, packs)
    jobs = [
        ((*head, [(digest, where) for digest, where, _ in batch]), batch)
        for batch in batches(contents, lambda item: item[2])
    ]

    def on_reply(batch: Contents, reply: tuple[Any, ...]) -> None:
        if reply[0] == "missing":  # a pack rewritten meanwhile: the caller's threads look again
            return
        _record(meter, writeback, [digest for digest, _, _ in batch], reply, done)

    _dispatch(writer, packs, meter, jobs, on_reply, processes, done)


def _dispatch(
    writer: BlobWriter,
    packs: str,
    meter: Meter,
    jobs: list[worker_pool.Job],
    on_reply: worker_pool.Reply,
    processes: int,
    done: dict[str, tuple[str, int]],
) -> None:
    """The jobs on the processes, then (when they pack) a flush: their packs land after their
    replies. When the processes fail meanwhile, what ``done`` holds whose content did not land
    (its pack died with its worker) leaves it, for the caller to store again."""
    try:
        worker_pool.dispatch(
            processes, meter, jobs, on_reply, _leftovers(writer), ("flush",) if packs else None
        )
    except worker_pool.Unavailable:
        if packs and done:
            index = PackIndex(packs)
            index.refresh(force=True)
            lost = [name for name, (digest, _) in done.items() if not _landed(writer, index, digest)]
            for name in lost:
                del done[name]
        raise


def _landed(writer: BlobWriter, index: PackIndex, digest: str) -> bool:
    return index.locate(digest) is not None or os.path.exists(writer.blob(digest))


def _record(
    meter: Meter,
    writeback: Writeback,
    names: list[str],
    reply: tuple[Any, ...],
    done: dict[str, tuple[str, int]],
) -> None:
    """A job's reply: each (digest, size) into ``done`` by name, the bytes to the meter."""
    worker_pool.raise_for(reply)
    written = 0
    for name, (digest, size, wrote) in zip(names, reply[1], strict=True):
        done[name] = (digest, size)
        written += wrote
    if written:
        writeback.wrote(written)
    meter.tick(sum(size for _, size, _ in reply[1]))
    meter.item(len(names))


def _leftovers(writer: BlobWriter) -> Any:
    """What removes the temp files (blobs, packs) a killed worker ``pid`` left."""

    def remove(pid: int) -> None:
        for temp in glob.glob(f"{writer.tmp}/{writer.prefix}-{pid}-*"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    return remove
