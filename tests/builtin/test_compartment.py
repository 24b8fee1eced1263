"""compartment.delete removes the compartment's snapshots and lists each one."""

from __future__ import annotations

from pathlib import Path

from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.registry import App
from longrun.model import ActionType, Status
from longrun.testing import run_handler
from tests.builtin.conftest import make_tree


def test_delete_lists_every_snapshot_it_removed(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src", files=3)
    ids = [
        run_handler(builtin_app.get("snapshot.take"), {"source": str(source)}).resource_location
        for _ in range(3)
    ]
    run = run_handler(builtin_app.get("compartment.delete"), {"compartment_id": "test"})
    assert run.status is Status.SUCCEEDED
    assert [(r.action_type, r.identifier) for r in run.resources] == [
        (ActionType.DELETED, i) for i in ids
    ]
    assert run.progress.items_done == run.progress.items_total == 3
    assert SnapshotStore(data_dir / "snapshots").list() == []


def test_delete_refuses_another_compartment(builtin_app: App) -> None:
    run = run_handler(builtin_app.get("compartment.delete"), {"compartment_id": "other"})
    assert run.status is Status.FAILED and run.errors[-1].code == "Forbidden"


def test_gc_removes_old_unreferenced_blobs_and_temp_files(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s").ensure()
    orphan = store.blob_path("ab" * 32)
    orphan.write_bytes(b"x")
    leftover = store.temp_path(".blob")
    leftover.write_bytes(b"partial")
    assert store.gc() == 0  # young: a take may still be writing them
    assert store.gc(min_age=-1) == 1
    assert not orphan.exists() and not leftover.exists()
