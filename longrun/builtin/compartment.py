"""``compartment.delete``: delete a compartment's snapshots, then purge its terminal operations."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin.snapshot_store import Manifest, SnapshotStore
from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = ["PURGE_BATCH", "DeleteInput", "delete_compartment", "register_compartment"]

PURGE_BATCH = 500  # terminal operations purged per store call: one short write each


class DeleteInput(BaseModel):
    """What ``compartment.delete`` removes: it must name the operation's own compartment."""

    compartment_id: str = Field(min_length=1, max_length=128)


def delete_compartment(store: SnapshotStore, ctx: Any, data: DeleteInput) -> dict[str, Any]:
    """Delete the compartment's snapshots, then purge its terminal operations (each leaves a
    tombstone: its id answers 410 Gone), listing every deleted item in ``resources``.

    Progress counts items: the snapshots, then the operations as their batches come. Their
    number is known only at the end, so until then ``items_total`` counts one item more than
    is done (percent stays below 100 until the last batch)."""
    if data.compartment_id != ctx.compartment_id:
        raise OperationError(
            "Forbidden",
            "compartment.delete runs in the compartment it deletes; submit it there",
            target="input.compartment_id",
        )
    snapshots = store.list(data.compartment_id)
    deleted, blobs = _delete_snapshots(store, ctx, snapshots)
    purged = _purge_operations(ctx, len(snapshots))
    done = len(snapshots) + purged
    ctx.progress(100.0, items_done=done, items_total=done)
    ctx.log(
        f"deleted {len(deleted)} snapshots (freed {blobs} unreferenced blobs) and purged"
        f" {purged} terminal operations of compartment {data.compartment_id}"
    )
    return {"deleted": deleted, "blobs_removed": blobs, "operations_purged": purged}


def _delete_snapshots(
    store: SnapshotStore, ctx: Any, snapshots: list[Manifest]
) -> tuple[list[str], int]:
    """Remove each snapshot; the ids removed, and how many unreferenced blobs went with them."""
    ctx.log(f"deleting {len(snapshots)} snapshots of compartment {ctx.compartment_id}")
    total = len(snapshots) + 1  # the operations to purge: one pending item until counted
    ctx.progress(0.0, items_done=0, items_total=total)
    deleted = []
    for done, manifest in enumerate(snapshots, start=1):
        ctx.check_cancelled()
        if store.remove(manifest.id):
            deleted.append(manifest.id)
            ctx.add_resource("snapshot", "DELETED", manifest.id)
        ctx.progress(items_done=done, items_total=total)
    return deleted, store.gc()


def _purge_operations(ctx: Any, items_before: int) -> int:
    """Purge the compartment's terminal operations batch by batch; how many were purged. The
    running delete is not terminal, so it stays; the resource cap may shorten the listing."""
    purged = 0
    while True:
        ctx.check_cancelled()
        batch = ctx.purge_terminal_operations_sync(PURGE_BATCH)
        for tombstone in batch:
            uri = f"/v1/operations/{tombstone.id}"
            ctx.add_resource("operation", "DELETED", tombstone.id, entity_uri=uri)
        purged += len(batch)
        more = len(batch) == PURGE_BATCH  # a full batch: there may be more
        done = items_before + purged
        ctx.progress(items_done=done, items_total=done + (1 if more else 0))
        if not more:
            return purged


def register_compartment(app: App, store: SnapshotStore) -> None:
    """Register ``compartment.delete`` on ``app``, over ``store``."""

    @app.operation(
        "compartment.delete",
        input=DeleteInput,
        locks=lambda data: [f"compartment:{data.compartment_id}"],
    )
    def delete(ctx: Any, data: DeleteInput) -> dict[str, Any]:
        """Delete every snapshot of a compartment and purge its terminal operations."""
        return delete_compartment(store, ctx, data)
