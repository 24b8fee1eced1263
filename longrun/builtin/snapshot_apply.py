"""``snapshot.apply``: a snapshot → a directory, written next to it and moved into place."""

from __future__ import annotations

import contextlib
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin import take_pool, worker_pool
from longrun.builtin.durability import fsync_dir, sync_filesystem
from longrun.builtin.meter import Meter
from longrun.builtin.rename_exchange import exchange
from longrun.builtin.restore_file import restore_file
from longrun.builtin.snapshot import path_lock, run_parallel
from longrun.builtin.snapshot_store import FileEntry, Manifest, SnapshotStore
from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = ["ApplyInput", "apply", "register_apply", "tree_state"]

_THREADS = 4  # files written at once


class ApplyInput(BaseModel):
    """What ``snapshot.apply`` writes."""

    snapshot_id: str = Field(min_length=1)
    target: str = Field(min_length=1, description="the directory to create or replace")
    replace: bool = Field(False, description="replace a non-empty target")
    throttle_bytes_per_second: int | None = Field(None, ge=1, description="for demos and tests")


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


def _check(entry: FileEntry, digest: str, size: int) -> None:
    """A written file must be the content its entry names: a tampered blob fails the apply."""
    if digest != entry.digest or size != entry.size:
        raise OperationError(
            "ContentMismatch",
            f"the stored content of {entry.path} does not match its hash",
            target=entry.path,
        )


def _write_file(
    store: SnapshotStore, meter: Meter, stage: str, algorithm: str, entry: FileEntry
) -> None:
    """One file, on a thread: written from its blob, then checked."""
    dest = os.path.join(stage, entry.path)
    digest, size = store.reading(
        entry.digest,
        lambda where: restore_file(where, dest, entry.mode, entry.mtime_ns, algorithm, meter.tick),
    )
    _check(entry, digest, size)
    meter.item()


def _write_in_processes(
    store: SnapshotStore, meter: Meter, stage: str, manifest: Manifest, throttled: bool
) -> set[str]:
    """The files the worker processes wrote (``worker_pool``), when it pays and they are
    free, largest first; each checked as its job comes back. Threads do the rest."""
    files = manifest.files
    if not take_pool.pays(manifest.size, len(files), throttled):
        return set()
    ordered = sorted(files, key=lambda entry: -entry.size)
    head = ("restore", manifest.hash, stage)
    jobs = [
        ((*head, [(e.path, store.locate(e.digest), e.mode, e.mtime_ns) for e in batch]), batch)
        for batch in take_pool.batches(ordered, lambda entry: entry.size)
    ]
    done: set[str] = set()

    def on_reply(batch: list[FileEntry], reply: tuple[Any, ...]) -> None:
        if reply[0] == "missing":  # a pack rewritten meanwhile: the threads look again
            return
        worker_pool.raise_for(reply)
        for entry, (digest, size) in zip(batch, reply[1], strict=True):
            _check(entry, digest, size)
            done.add(entry.path)
        meter.tick(sum(entry.size for entry in batch))
        meter.item(len(batch))

    with contextlib.suppress(worker_pool.Unavailable):
        worker_pool.dispatch(worker_pool.workers_for(_THREADS), meter, jobs, on_reply)
    return done


def _swap(stage: Path, target: Path, state: Any, op_id: str) -> None:
    """Move ``stage`` (durable already) into place as ``target``, each step made durable before
    the old tree is removed. A non-empty target is exchanged with the stage in one step
    (``rename_exchange``), so a crash leaves the old tree or the new one at the target; where
    that cannot be done, it is moved aside first, then the stage in."""
    if state is None or len(state) == 1:
        os.rename(stage, target)  # rename(2) replaces an empty directory in one step
        fsync_dir(target.parent)
        return
    if exchange(stage, target):  # the stage's path now holds the old tree: apply removes it
        fsync_dir(target.parent)
        return
    old = target.parent / f".{target.name}.replaced-{op_id}"
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except OSError:
        os.rename(old, target)
        raise
    fsync_dir(target.parent)
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
    store.index.refresh()  # once, before the threads look content up
    try:
        stage.mkdir()
        for rel, _ in manifest.dirs[1:]:
            (stage / rel).mkdir(exist_ok=True)
        throttled = bool(data.throttle_bytes_per_second)
        done = _write_in_processes(store, meter, str(stage), manifest, throttled)
        jobs = [
            partial(_write_file, store, meter, str(stage), manifest.hash, e)
            for e in manifest.files
            if e.path not in done
        ]
        run_parallel(meter, jobs, _THREADS)
        for rel, mode in reversed(manifest.dirs):
            os.chmod(stage / rel, mode)
        ctx.check_cancelled()
        sync_filesystem(stage)  # every file and folder of the new tree on disk before the swap
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


def register_apply(app: App, store: SnapshotStore) -> None:
    """Register ``snapshot.apply`` on ``app``, over ``store``."""

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
