"""compartment.delete removes the compartment's snapshots, purges its terminal operations (their
ids then answer 410 Gone) and lists each deleted item; other compartments and live work stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from longrun.builtin.compartment import PURGE_BATCH
from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.caps import EntryCaps
from longrun.engine.registry import App
from longrun.model import ActionType, Gone, Operation, Status
from longrun.service import Service
from longrun.testing import run_handler
from tests.builtin.conftest import make_tree, reaches, settled

RESOURCE_CAP = 40


@pytest.fixture
def worker_caps() -> EntryCaps:
    return EntryCaps(resources=RESOURCE_CAP)


async def _run(service: Service, op_type: str, data: object, compartment: str) -> Operation:
    op, _ = await service.submit(op_type, data, compartment_id=compartment)
    return await settled(service, op.id)


async def _delete(service: Service, compartment: str) -> Operation:
    return await _run(service, "compartment.delete", {"compartment_id": compartment}, compartment)


async def test_delete_removes_snapshots_and_purges_terminal_operations(
    service: Service, tmp_path: Path, data_dir: Path
) -> None:
    source = str(make_tree(tmp_path / "src", files=3))
    takes = [await _run(service, "snapshot.take", {"source": source}, "acme") for _ in range(3)]
    failed = await _run(service, "snapshot.take", {"source": str(tmp_path / "none")}, "acme")
    other = await _run(service, "snapshot.take", {"source": source}, "other")
    assert [op.status for op in takes] == [Status.SUCCEEDED] * 3
    assert failed.status is Status.FAILED and other.status is Status.SUCCEEDED
    later = service.clock.now() + timedelta(hours=1)
    waiting, _ = await service.submit("demo.sleep", {}, compartment_id="acme", not_before=later)
    running, _ = await service.submit("demo.sleep", {"seconds": 30}, compartment_id="acme")
    await reaches(service, running.id, lambda op: op.status is Status.IN_PROGRESS)

    deleted = await _delete(service, "acme")

    assert deleted.status is Status.SUCCEEDED, deleted.errors
    ended = sorted(op.id for op in [*takes, failed])
    snapshots = [(ActionType.DELETED, op.resource_location) for op in takes]
    assert [(r.action_type, r.identifier) for r in deleted.resources] == [
        *snapshots,
        *((ActionType.DELETED, op_id) for op_id in ended),
    ]
    listed = [r for r in deleted.resources if r.entity_type == "operation"]
    assert [r.entity_uri for r in listed] == [f"/v1/operations/{i}" for i in ended]
    assert deleted.result["operations_purged"] == len(ended)
    assert deleted.progress.items_done == deleted.progress.items_total == 3 + len(ended)
    assert deleted.percent_complete == 100.0
    for op_id in ended:
        with pytest.raises(Gone) as gone:
            await service.get(op_id)
        assert gone.value.http_status == 410
    assert (await service.get(waiting.id)).status is Status.ACCEPTED
    assert (await service.get(running.id)).status is Status.IN_PROGRESS
    assert (await service.get(other.id)).status is Status.SUCCEEDED
    assert [m.id for m in SnapshotStore(data_dir / "snapshots").list()] == [other.resource_location]
    await service.cancel(running.id)


async def test_delete_purges_every_batch_past_the_resource_cap(service: Service) -> None:
    later = service.clock.now() + timedelta(hours=1)
    count = PURGE_BATCH + 20  # two batches
    for _ in range(count):
        op, _ = await service.submit("demo.sleep", {}, compartment_id="big", not_before=later)
        await service.cancel(op.id)

    deleted = await _delete(service, "big")

    assert deleted.status is Status.SUCCEEDED, deleted.errors
    assert deleted.result["operations_purged"] == count
    assert deleted.progress.items_done == deleted.progress.items_total == count
    assert len(deleted.resources) == RESOURCE_CAP
    assert any("resources truncated" in entry.message for entry in deleted.logs)
    assert any(f"purged {count} terminal operations" in entry.message for entry in deleted.logs)
    assert [op.id for op in (await service.list(compartment_ids=["big"])).items] == [deleted.id]


async def test_delete_of_another_compartment_is_refused_and_purges_nothing(
    service: Service, tmp_path: Path
) -> None:
    other = await _run(service, "demo.sleep", {"seconds": 0}, "other")
    refused = await _run(service, "compartment.delete", {"compartment_id": "other"}, "acme")
    assert refused.status is Status.FAILED
    assert refused.errors[-1].code == "Forbidden"
    assert refused.errors[-1].target == "input.compartment_id"
    assert (await service.get(other.id)).status is Status.SUCCEEDED


def test_delete_refuses_another_compartment(builtin_app: App) -> None:
    run = run_handler(builtin_app.get("compartment.delete"), {"compartment_id": "other"})
    assert run.status is Status.FAILED and run.errors[-1].code == "Forbidden"


def test_delete_without_a_worker_says_it_needs_one(builtin_app: App) -> None:
    run = run_handler(builtin_app.get("compartment.delete"), {"compartment_id": "test"})
    assert run.status is Status.FAILED
    assert "needs a worker" in run.errors[-1].message


def test_gc_removes_old_unreferenced_blobs_and_temp_files(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s").ensure()
    orphan = store.blob_path("ab" * 32)
    orphan.parent.mkdir()  # a store makes a shard folder with its first blob
    orphan.write_bytes(b"x")
    leftover = store.temp_path(".blob")
    leftover.write_bytes(b"partial")
    assert store.gc() == 0  # young: a take may still be writing them
    assert store.gc(min_age=-1) == 1
    assert not orphan.exists() and not leftover.exists()
