"""``snapshot.copy``: snapshots → another snapshot store, moving only content the target lacks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin import take_pool, worker_pool
from longrun.builtin.blob_writer import BlobWriter, copy_hashing
from longrun.builtin.content_hash import new_hasher
from longrun.builtin.durability import Writeback
from longrun.builtin.meter import Meter
from longrun.builtin.snapshot import path_lock, run_parallel
from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.registry import App
from longrun.model import Operation, OperationError

__all__ = ["CopyInput", "copy_one", "register_copy"]

_STATS = ("logical_bytes_transferred", "logical_size_in_bytes", "physical_bytes_transferred")


class CopyInput(BaseModel):
    """What ``snapshot.copy`` moves, and where."""

    snapshot_ids: list[str] = Field(min_length=1, max_length=1000)
    target: str = Field(min_length=1, description="the root of the target snapshot store")
    threads: int = Field(4, ge=1, le=64)
    throttle_bytes_per_second: int | None = Field(None, ge=1, description="for demos and tests")


def _copy_blob(
    source: SnapshotStore, target: SnapshotStore, meter: Meter, algorithm: str, digest: str
) -> None:
    temp = target.temp_path(".blob")
    try:
        hasher = new_hasher(algorithm)
        src, size = source.open_content(digest)
        try:
            with temp.open("wb", buffering=0) as dst:
                copy_hashing(src, dst.fileno(), hasher, meter.tick, size)
        finally:
            os.close(src)
        if hasher.hexdigest() != digest:
            raise OperationError(
                "ContentMismatch", f"the source content {digest} does not match its hash"
            )
        target.adopt(temp, digest)
        meter.item()
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _copy_in_processes(
    source: SnapshotStore,
    target: SnapshotStore,
    meter: Meter,
    algorithm: str,
    missing: dict[str, int],
    data: CopyInput,
) -> set[str]:
    """The contents copied by the worker processes (``take_pool``), when it pays and they
    are free: each read where it lies in the source (a blob file, or a range of a pack) and
    hashed again as it is stored in the target. Returns the digests done, each checked;
    threads do the rest."""
    throttled = bool(data.throttle_bytes_per_second)
    if data.threads < 2 or not take_pool.pays(meter.bytes_total, len(missing), throttled):
        return set()
    contents = sorted(
        ((digest, source.locate(digest), size) for digest, size in missing.items()),
        key=lambda item: -item[2],
    )
    # the target's own writer names blobs by the target's hash; these keep the manifest's
    writer = BlobWriter(str(target.blobs), str(target.tmp), secrets.token_hex(6), algorithm)
    stored: dict[str, tuple[str, int]] = {}
    processes = worker_pool.workers_for(data.threads)
    with Writeback(target.root) as writeback, contextlib.suppress(worker_pool.Unavailable):
        take_pool.copy_contents(
            writer, target.packs_for_workers(), meter, writeback, contents, processes, stored
        )
    for digest, (got, _) in stored.items():
        if got != digest:
            raise OperationError(
                "ContentMismatch", f"the source content {digest} does not match its hash"
            )
    return set(stored)


def copy_one(source: SnapshotStore, ctx: Any, snapshot_id: str, data: CopyInput) -> dict[str, Any]:
    """Copy one snapshot: the blobs the target lacks, then its manifest (published last)."""
    manifest = source.load(snapshot_id, ctx.compartment_id)
    target = SnapshotStore(data.target).ensure()
    sizes = {f.digest: f.size for f in manifest.files}
    target.index.refresh(force=True)
    missing = sorted(d for d in sizes if not target.has_blob(d))
    physical = sum(sizes[d] for d in missing)
    lacking = set(missing)
    logical_moved = sum(f.size for f in manifest.files if f.digest in lacking)
    incremental = len(missing) < len(sizes)
    ctx.log(
        f"copying {snapshot_id} to {target.root}: {len(missing)} of {len(sizes)} contents"
        f" missing ({physical} bytes)"
    )
    meter = Meter(ctx, physical, len(missing), data.throttle_bytes_per_second)
    done = _copy_in_processes(
        source, target, meter, manifest.hash, {d: sizes[d] for d in missing}, data
    )
    run_parallel(
        meter,
        [
            partial(_copy_blob, source, target, meter, manifest.hash, d)
            for d in missing
            if d not in done
        ],
        data.threads,
    )
    ctx.check_cancelled()
    target.publish(manifest)
    stats = {
        "logical_bytes_transferred": logical_moved,
        "logical_size_in_bytes": manifest.size,
        "physical_bytes_transferred": physical,
        "transfer_rate_bytes_per_second": round(physical / max(meter.elapsed, 1e-6)),
        "is_incremental": incremental,
    }
    ctx.progress(100.0, bytes_done=physical, bytes_total=physical, **stats)
    ctx.add_resource("snapshot", "CREATED", snapshot_id, entity_uri=target.root.as_uri())
    ctx.set_resource_location(str(target.root))
    return {"snapshot_id": snapshot_id, "target": str(target.root), **stats}


def _totals(kids: list[Operation], seconds: float) -> dict[str, Any]:
    stats: dict[str, Any] = {
        key: sum(int(kid.progress.properties.get(key) or 0) for kid in kids) for key in _STATS
    }
    stats["transfer_rate_bytes_per_second"] = round(
        stats["physical_bytes_transferred"] / max(seconds, 1e-6)
    )
    stats["is_incremental"] = any(kid.progress.properties.get("is_incremental") for kid in kids)
    return stats


async def copy_many(ctx: Any, data: CopyInput) -> dict[str, Any]:
    """One sub-operation per snapshot; the parent's end follows theirs."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    for snapshot_id in data.snapshot_ids:
        await ctx.spawn("snapshot.copy", {**data.model_dump(), "snapshot_ids": [snapshot_id]})
    kids = await ctx.join_children()
    stats = _totals(kids, loop.time() - started)
    ctx.progress(**stats)
    target = str(Path(data.target).expanduser().resolve())
    ctx.set_resource_location(target)
    return {"target": target, "children": [kid.id for kid in kids], **stats}


def _copy_locks(data: CopyInput) -> list[str]:
    """One snapshot into one target at a time; a parent of several holds nothing itself."""
    if len(data.snapshot_ids) > 1:
        return []
    return [f"copy:{path_lock(data.target)}:{data.snapshot_ids[0]}"]


def register_copy(app: App, source: SnapshotStore) -> None:
    """Register ``snapshot.copy`` on ``app``, copying out of ``source``."""

    @app.operation(
        "snapshot.copy",
        input=CopyInput,
        max_attempts=3,
        cancel_grace=10.0,
        locks=_copy_locks,
    )
    async def copy_snapshots(ctx: Any, data: CopyInput) -> dict[str, Any]:
        """Copy snapshots to another snapshot store, incrementally."""
        if len(data.snapshot_ids) > 1:
            return await copy_many(ctx, data)
        return await asyncio.to_thread(copy_one, source, ctx, data.snapshot_ids[0], data)
