"""snapshot.copy through a real worker: incremental transfer, sub-operations, cancel propagation."""

from __future__ import annotations

import os
from pathlib import Path

from longrun.model import Status
from longrun.service import Service
from longrun.store.base import ListQuery
from tests.builtin.conftest import make_tree, reaches, settled


async def _take(service: Service, source: Path) -> str:
    op, _ = await service.submit("snapshot.take", {"source": str(source)})
    done = await settled(service, op.id)
    assert done.status is Status.SUCCEEDED, done.errors
    assert done.resource_location is not None
    return done.resource_location


async def _copy(service: Service, ids: list[str], target: Path, **more: object) -> str:
    op, _ = await service.submit(
        "snapshot.copy", {"snapshot_ids": ids, "target": str(target), **more}
    )
    return op.id


async def test_an_incremental_copy_moves_only_new_content(service: Service, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=50, size=40_000)
    first = await _take(service, source)
    target = tmp_path / "replica"
    full = await settled(service, await _copy(service, [first], target))
    assert full.status is Status.SUCCEEDED, full.errors
    props = full.progress.properties
    assert props["is_incremental"] is False
    assert props["physical_bytes_transferred"] < props["logical_size_in_bytes"]  # dup-a/dup-b
    changed = source / "d0" / "e0" / "f0.bin"
    changed.write_bytes(os.urandom(30_000))
    second = await _take(service, source)
    again = await settled(service, await _copy(service, [second], target))
    assert again.status is Status.SUCCEEDED
    props = again.progress.properties
    assert props["is_incremental"] is True
    assert props["physical_bytes_transferred"] == 30_000
    assert props["logical_bytes_transferred"] == 30_000
    assert props["logical_size_in_bytes"] == sum(
        p.stat().st_size for p in source.rglob("*") if p.is_file()
    )
    assert sorted(p.stem for p in (target / "manifests").iterdir()) == sorted([first, second])
    assert again.resource_location == str(target)


async def test_copying_several_snapshots_spawns_one_child_each(
    service: Service, tmp_path: Path
) -> None:
    ids = [await _take(service, make_tree(tmp_path / f"src{n}", files=5, seed=n)) for n in range(3)]
    parent = await settled(service, await _copy(service, ids, tmp_path / "replica"))
    assert parent.status is Status.SUCCEEDED, parent.errors
    kids = await service.store.list(ListQuery(parent_id=parent.id, newest_first=False))
    assert len(kids) == 3
    assert all(kid.status is Status.SUCCEEDED for kid in kids)
    assert sorted(kid.input["snapshot_ids"][0] for kid in kids) == sorted(ids)
    total = sum(kid.progress.bytes_total or 0 for kid in kids)
    assert parent.progress.bytes_done == parent.progress.bytes_total == total > 0
    assert parent.progress.items_done == parent.progress.items_total == 3
    props = parent.progress.properties
    assert props["physical_bytes_transferred"] == total


async def test_a_failed_child_turns_the_parent_to_warnings_or_failure(
    service: Service, tmp_path: Path
) -> None:
    good = await _take(service, make_tree(tmp_path / "src", files=3))
    mixed = await settled(service, await _copy(service, [good, "snap-missing"], tmp_path / "r"))
    assert mixed.status is Status.SUCCEEDED_WITH_WARNINGS
    assert any("FAILED" in entry.message for entry in mixed.logs)
    bad = await settled(service, await _copy(service, ["snap-x", "snap-y"], tmp_path / "r2"))
    assert bad.status is Status.FAILED
    assert bad.errors[-1].code == "SubOperationsFailed"


async def test_canceling_the_parent_cancels_its_children(service: Service, tmp_path: Path) -> None:
    ids = []
    for n in range(2):
        source = tmp_path / f"big{n}"
        source.mkdir()
        (source / "blob.bin").write_bytes(os.urandom(8 << 20))
        ids.append(await _take(service, source))
    parent_id = await _copy(
        service, ids, tmp_path / "replica", throttle_bytes_per_second=2 << 20, threads=1
    )
    await reaches(service, parent_id, lambda op: (op.progress.bytes_done or 0) > 0)
    await service.cancel(parent_id)
    parent = await settled(service, parent_id, timeout=10)
    assert parent.status is Status.CANCELED
    kids = await service.store.list(ListQuery(parent_id=parent_id))
    assert len(kids) == 2 and all(kid.status is Status.CANCELED for kid in kids)
    assert list((tmp_path / "replica" / "manifests").iterdir()) == []
