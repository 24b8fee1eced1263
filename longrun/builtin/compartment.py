"""``compartment.delete``: delete every snapshot of the compartment the operation runs in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = ["DeleteInput", "delete_compartment", "register_compartment"]


class DeleteInput(BaseModel):
    """What ``compartment.delete`` removes: it must name the operation's own compartment."""

    compartment_id: str = Field(min_length=1, max_length=128)


def delete_compartment(store: SnapshotStore, ctx: Any, data: DeleteInput) -> dict[str, Any]:
    """Delete the compartment's snapshots one by one, listing each in ``resources``."""
    if data.compartment_id != ctx.compartment_id:
        raise OperationError(
            "Forbidden",
            "compartment.delete runs in the compartment it deletes; submit it there",
            target="input.compartment_id",
        )
    snapshots = store.list(data.compartment_id)
    ctx.log(f"deleting {len(snapshots)} snapshots of compartment {data.compartment_id}")
    ctx.progress(0.0, items_done=0, items_total=len(snapshots))
    deleted = []
    for done, manifest in enumerate(snapshots, start=1):
        ctx.check_cancelled()
        if store.remove(manifest.id):
            deleted.append(manifest.id)
            ctx.add_resource("snapshot", "DELETED", manifest.id)
        ctx.progress(items_done=done, items_total=len(snapshots))
    blobs = store.gc()
    ctx.progress(100.0, items_done=len(snapshots), items_total=len(snapshots))
    ctx.log(f"deleted {len(deleted)} snapshots; freed {blobs} unreferenced blobs")
    return {"deleted": deleted, "blobs_removed": blobs}


def register_compartment(app: App, store: SnapshotStore) -> None:
    """Register ``compartment.delete`` on ``app``, over ``store``."""

    @app.operation(
        "compartment.delete",
        input=DeleteInput,
        locks=lambda data: [f"compartment:{data.compartment_id}"],
    )
    def delete(ctx: Any, data: DeleteInput) -> dict[str, Any]:
        """Delete every snapshot of a compartment."""
        return delete_compartment(store, ctx, data)
