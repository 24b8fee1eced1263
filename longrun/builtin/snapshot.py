"""``snapshot.take`` (a directory or file → a snapshot) and ``snapshot.apply`` (→ a directory)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin import take_pool
from longrun.builtin.durability import Writeback
from longrun.builtin.meter import Meter, Stopped
from longrun.builtin.snapshot_store import FileEntry, Manifest, SnapshotStore, copy_stream
from longrun.builtin.source_tree import changed, file_names, scan
from longrun.builtin.take_worker import Changed, store_file
from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = [
    "ApplyInput",
    "TakeInput",
    "path_lock",
    "register_snapshot",
    "run_parallel",
    "tree_state",
]


class TakeInput(BaseModel):
    """What ``snapshot.take`` reads."""

    source: str = Field(min_length=1, description="a directory or a file, as the worker sees it")
    threads: int = Field(4, ge=1, le=64, description="files read at once")
    throttle_bytes_per_second: int | None = Field(None, ge=1, description="for demos and tests")


class ApplyInput(BaseModel):
    """What ``snapshot.apply`` writes."""

    snapshot_id: str = Field(min_length=1)
    target: str = Field(min_length=1, description="the directory to create or replace")
    replace: bool = Field(False, description="replace a non-empty target")
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
) -> list[FileEntry]:
    """Every file into the store, largest first: with the worker processes when it pays and
    they are there, else (or for what they left) with threads. Entries by path."""
    ordered = sorted(files.items(), key=lambda item: -item[1].st_size)
    done: dict[str, tuple[str, int]] = {}
    total = sum(st.st_size for st in files.values())
    if data.threads > 1 and take_pool.pays(total, len(files), bool(data.throttle_bytes_per_second)):
        processes = take_pool.workers_for(data.threads)
        with contextlib.suppress(take_pool.Unavailable):
            take_pool.store_files(store.writer, meter, writeback, base, ordered, processes, done)
    entries = [
        FileEntry(rel, size, stat.S_IMODE(files[rel].st_mode), files[rel].st_mtime_ns, digest)
        for rel, (digest, size) in done.items()
    ]
    jobs = [
        partial(_read_file, store, meter, writeback, f"{base}/{rel}", rel, st)
        for rel, st in ordered
        if rel not in done
    ]
    entries += run_parallel(meter, jobs, data.threads)
    return sorted(entries, key=lambda e: e.path)


def take(store: SnapshotStore, ctx: Any, data: TakeInput) -> dict[str, Any]:
    """Read a directory (or a file) into the snapshot store; fail if it is edited meanwhile."""
    source = Path(data.source).expanduser().resolve()
    kind, files, dirs = scan(source)
    total = sum(st.st_size for st in files.values())
    ctx.log(f"taking a snapshot of {source}: {len(files)} files, {total} bytes")
    store.ensure()
    meter = Meter(ctx, total, len(files), data.throttle_bytes_per_second)
    base = str(source.parent if kind == "file" else source)
    # syncs along the way: the final one, before the manifest, has little left to wait for
    with Writeback(store.root) as writeback:
        entries = _store_all(store, meter, writeback, base, files, data)
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
    store.publish(manifest, flushing)
    ctx.add_resource("snapshot", "CREATED", manifest.id, entity_uri=store.root.as_uri())
    ctx.set_resource_location(manifest.id)
    rate = total / meter.elapsed if meter.elapsed > 0 else None
    ctx.progress(100.0, bytes_done=total, items_done=len(entries), bytes_per_second=rate)
    ctx.log(f"snapshot {manifest.id}: {len(entries)} files, {total} bytes")
    return {"snapshot_id": manifest.id, "files": len(entries), "bytes": total}


def tree_state(path: Path) -> list[tuple[str, int, int, int]] | None:
    """What the target looks like (None when absent): compared before and after an apply."""
    if not path.exists():
        return None
    if not path.is_dir():
        raise OperationError("TargetNotADirectory", f"{path} is not a directory", target=str(path))
    found = []
    for folder, _, names in os.walk(path):
        for name in [".", *names]:
            st = os.lstat(os.path.join(folder, name))
            rel = os.path.relpath(os.path.join(folder, name), path)
            found.append((rel, st.st_size if name != "." else 0, st.st_mtime_ns, st.st_mode))
    return sorted(found)


def _write_file(
    store: SnapshotStore, meter: Meter, stage: str, algorithm: str, entry: FileEntry
) -> None:
    dest = os.path.join(stage, entry.path)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.mode)
    with store.open_blob(entry.digest) as src, os.fdopen(fd, "wb", buffering=0) as dst:
        digest, size = copy_stream(src, dst, algorithm, meter.tick)
        os.fchmod(fd, entry.mode)  # exact, whatever the umask
        os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
    if digest != entry.digest or size != entry.size:
        raise OperationError(
            "ContentMismatch",
            f"the stored content of {entry.path} does not match its hash",
            target=entry.path,
        )
    meter.item()


def _swap(stage: Path, target: Path, state: Any, op_id: str) -> None:
    """Move ``stage`` into place as ``target``; a non-empty target is moved aside, then removed."""
    if state is None or len(state) == 1:
        os.rename(stage, target)  # rename(2) replaces an empty directory in one step
        return
    old = target.parent / f".{target.name}.replaced-{op_id}"
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def apply(store: SnapshotStore, ctx: Any, data: ApplyInput) -> dict[str, Any]:
    """Restore a snapshot into a directory next to the target, then move it into place."""
    manifest = store.load(data.snapshot_id, ctx.compartment_id)
    target = Path(data.target).expanduser().resolve()
    state = tree_state(target)
    if state is not None and len(state) > 1 and not data.replace:
        raise OperationError(
            "TargetNotEmpty", f"{target} is not empty; ask to replace it", target="input.target"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = target.parent / f".{target.name}.apply-{ctx.operation_id}"
    shutil.rmtree(stage, ignore_errors=True)  # what an earlier attempt left
    ctx.log(f"applying {manifest.id} ({len(manifest.files)} files) to {target}")
    meter = Meter(ctx, manifest.size, len(manifest.files), data.throttle_bytes_per_second)
    try:
        stage.mkdir()
        for rel, _ in manifest.dirs[1:]:
            (stage / rel).mkdir(exist_ok=True)
        jobs = [
            partial(_write_file, store, meter, str(stage), manifest.hash, e) for e in manifest.files
        ]
        run_parallel(meter, jobs, 4)
        for rel, mode in reversed(manifest.dirs):
            os.chmod(stage / rel, mode)
        ctx.check_cancelled()
        if tree_state(target) != state:
            raise OperationError(
                "TargetChanged",
                f"{target} was changed while the snapshot was applied",
                target=str(target),
            )
        _swap(stage, target, state, ctx.operation_id)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if stage.exists():
                shutil.rmtree(stage)
    ctx.add_resource("directory", "UPDATED" if state else "CREATED", str(target))
    ctx.set_resource_location(str(target))
    ctx.progress(100.0, bytes_done=manifest.size, items_done=len(manifest.files))
    return {"snapshot_id": manifest.id, "target": str(target), "files": len(manifest.files)}


def register_snapshot(app: App, store: SnapshotStore) -> None:
    """Register ``snapshot.take`` and ``snapshot.apply`` on ``app``, over ``store``."""

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

    @app.operation(
        "snapshot.apply",
        input=ApplyInput,
        max_attempts=2,
        cancel_grace=10.0,
        locks=lambda data: [path_lock(data.target)],
        lock_policy="refuse",
    )
    def apply_snapshot(ctx: Any, data: ApplyInput) -> dict[str, Any]:
        """Apply a snapshot to a directory, atomically."""
        return apply(store, ctx, data)
