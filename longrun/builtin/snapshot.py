"""``snapshot.take``: a directory or a file → a snapshot; and the helpers apply and copy share."""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin import take_pool, worker_pool
from longrun.builtin.durability import Writeback
from longrun.builtin.meter import Meter, Stopped
from longrun.builtin.snapshot_manifest import encode_entry
from longrun.builtin.snapshot_store import FileEntry, Manifest, SnapshotStore
from longrun.builtin.source_tree import changed, file_names, scan
from longrun.builtin.take_worker import Changed, store_file
from longrun.engine.registry import App

__all__ = ["TakeInput", "path_lock", "register_snapshot", "run_parallel", "take"]


class TakeInput(BaseModel):
    """What ``snapshot.take`` reads."""

    source: str = Field(min_length=1, description="a directory or a file, as the worker sees it")
    threads: int = Field(4, ge=1, le=64, description="files read at once")
    throttle_bytes_per_second: int | None = Field(None, ge=1, description="for demos and tests")


def path_lock(path: str) -> str:
    """The lock key of a file system path, as a worker resolves it."""
    return f"path:{os.path.abspath(os.path.expanduser(path))}"


def run_parallel(meter: Meter, jobs: Sequence[Callable[[], Any]], threads: int) -> list[Any]:
    """Run ``jobs`` on ``threads`` threads, each taking the next job as it finishes one (no
    future per job); the first error stops the rest and is raised. Results in job order."""
    results: list[Any] = [None] * len(jobs)
    errors: list[tuple[int, BaseException]] = []
    order = itertools.count()  # next() on a count is atomic: each job is taken once

    def work() -> None:
        while not meter.stop.is_set():
            index = next(order)
            if index >= len(jobs):
                return
            try:
                results[index] = jobs[index]()
            except BaseException as exc:
                errors.append((index, exc))
                meter.stop.set()  # the other threads' next tick raises Stopped

    workers = [
        threading.Thread(target=work, name=f"longrun-io-{n}", daemon=True)
        for n in range(min(threads, len(jobs)))
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        errors.sort(key=lambda error: error[0])
        real = [exc for _, exc in errors if not isinstance(exc, Stopped)]
        raise (real or [exc for _, exc in errors])[0]
    return results


def _read_file(
    store: SnapshotStore, meter: Meter, writeback: Writeback, path: str, rel: str, seen: Any
) -> FileEntry:
    """One file into the store (``store_file``: it fails if the file is edited meanwhile)."""
    try:
        digest, size, written = store_file(
            store.writer, path, (seen.st_size, seen.st_mtime_ns, seen.st_ino), meter.tick
        )
    except Changed as exc:
        raise changed(exc.path, exc.what) from None
    if written:
        writeback.wrote(written)
    meter.item()
    return FileEntry(rel, size, stat.S_IMODE(seen.st_mode), seen.st_mtime_ns, digest)


def _store_all(
    store: SnapshotStore,
    meter: Meter,
    writeback: Writeback,
    base: str,
    files: dict[str, os.stat_result],
    data: TakeInput,
) -> tuple[list[FileEntry], list[str]]:
    """Every file into the store, largest first: with the worker processes when it pays and
    they are there, else (or for what they left) with threads. The entries by path, and each
    one's JSON (encoded as the processes' jobs come back, while they read on)."""
    ordered = sorted(files.items(), key=lambda item: -item[1].st_size)
    done: dict[str, tuple[str, int]] = {}
    made: dict[str, tuple[FileEntry, str]] = {}

    def keep(rel: str, digest: str, size: int) -> None:
        seen = files[rel]
        entry = FileEntry(rel, size, stat.S_IMODE(seen.st_mode), seen.st_mtime_ns, digest)
        made[rel] = (entry, encode_entry(entry))

    total = sum(st.st_size for st in files.values())
    if data.threads > 1 and take_pool.pays(total, len(files), bool(data.throttle_bytes_per_second)):
        processes = worker_pool.workers_for(data.threads)
        with contextlib.suppress(worker_pool.Unavailable):
            take_pool.store_files(
                store.writer, store.packs_for_workers(), meter, writeback, base, ordered,
                processes, done, keep,
            )
    jobs = [
        partial(_read_file, store, meter, writeback, f"{base}/{rel}", rel, st)
        for rel, st in ordered
        if rel not in done
    ]
    for entry in run_parallel(meter, jobs, data.threads):
        made[entry.path] = (entry, encode_entry(entry))
    # the scan's order is nearly the paths' (a folder's files before its subfolders'): quick
    pairs = sorted((made[rel] for rel in files), key=lambda pair: pair[0].path)
    return [entry for entry, _ in pairs], [text for _, text in pairs]


def take(store: SnapshotStore, ctx: Any, data: TakeInput) -> dict[str, Any]:
    """Read a directory (or a file) into the snapshot store; fail if it is edited meanwhile."""
    source = Path(data.source).expanduser().resolve()
    kind, files, dirs = scan(source)
    total = sum(st.st_size for st in files.values())
    ctx.log(f"taking a snapshot of {source}: {len(files)} files, {total} bytes")
    store.ensure()
    store.index.refresh()
    meter = Meter(ctx, total, len(files), data.throttle_bytes_per_second)
    base = str(source.parent if kind == "file" else source)
    # syncs along the way: the final one, before the manifest, has little left to wait for
    # (a packing store's workers write their packs past the page cache, leaving next to nothing
    # for them: syncs of the whole file system meanwhile cost more CPU than they would save)
    with Writeback(store.root, every=None if store.packing else 64 << 20) as writeback:
        entries, encoded = _store_all(store, meter, writeback, base, files, data)
    flushing = store.flush()  # the content goes to disk while the end-of-take check runs
    again = file_names(source)
    for rel in sorted(set(files) ^ again):
        raise changed(f"{base}/{rel}", "appeared" if rel in again else "vanished")
    manifest = Manifest(
        store.new_snapshot_id(),
        ctx.compartment_id,
        str(source),
        kind,
        time.time(),
        entries,
        dirs,
        store.algorithm,
    )
    store.publish(manifest, flushing, encoded)
    ctx.add_resource("snapshot", "CREATED", manifest.id, entity_uri=store.root.as_uri())
    ctx.set_resource_location(manifest.id)
    rate = total / meter.elapsed if meter.elapsed > 0 else None
    ctx.progress(100.0, bytes_done=total, items_done=len(entries), bytes_per_second=rate)
    ctx.log(f"snapshot {manifest.id}: {len(entries)} files, {total} bytes")
    return {"snapshot_id": manifest.id, "files": len(entries), "bytes": total}


def register_snapshot(app: App, store: SnapshotStore) -> None:
    """Register ``snapshot.take`` on ``app``, over ``store``."""

    @app.operation(
        "snapshot.take",
        input=TakeInput,
        max_attempts=3,
        cancel_grace=10.0,
        locks=lambda data: [path_lock(data.source)],
    )
    def take_snapshot(ctx: Any, data: TakeInput) -> dict[str, Any]:
        """Take a snapshot of a directory or a file into the snapshot store."""
        return take(store, ctx, data)
