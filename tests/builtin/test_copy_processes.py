"""snapshot.copy through take's worker processes: the same replica, incremental, tamper caught."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from longrun.builtin import default_app, take_pool
from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import run_handler
from tests.builtin.conftest import blob_names, damage, make_tree, stored, tree_of

pytestmark = pytest.mark.usefixtures("in_processes")


@pytest.fixture
def by_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many contents each call of the real ``copy_contents`` copied (the calls still run)."""
    calls: list[int] = []
    real = take_pool.copy_contents

    def counting(*args: Any) -> None:
        done = args[-1]
        try:
            real(*args)
        finally:
            calls.append(len(done))

    monkeypatch.setattr(take_pool, "copy_contents", counting)
    yield calls


def _run(app: App, kind: str, **payload: Any) -> Any:
    return run_handler(app.get(kind), payload)


def test_a_copy_by_the_processes_makes_the_same_replica(
    builtin_app: App, tmp_path: Path, data_dir: Path, by_processes: list[int]
) -> None:
    source = make_tree(tmp_path / "src", files=30, size=60_000)
    snapshot_id = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    other = tmp_path / "other"
    replica = other / "snapshots"
    copied = _run(builtin_app, "snapshot.copy", snapshot_ids=[snapshot_id], target=str(replica))
    assert copied.status is Status.SUCCEEDED, copied.errors
    held = stored(data_dir / "snapshots")
    assert by_processes[-1] == len(held)  # every content went through the processes
    assert blob_names(replica) == set(held)
    assert list((replica / "tmp").iterdir()) == []
    assert list((replica / "packs").glob("*.pack"))  # packed at the target too
    props = copied.progress.properties
    assert props["physical_bytes_transferred"] == sum(size for _, _, size in held.values())
    assert copied.progress.items_done == copied.progress.items_total == len(held)
    app = default_app(SimpleNamespace(data_dir=str(other)))
    applied = _run(app, "snapshot.apply", snapshot_id=snapshot_id, target=str(tmp_path / "out"))
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert tree_of(tmp_path / "out") == tree_of(source)
    # after one file changed, only its new content moves, again by the processes
    (source / "d0" / "e0" / "f0.bin").write_bytes(os.urandom(50_000))
    second = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    again = _run(builtin_app, "snapshot.copy", snapshot_ids=[second], target=str(replica))
    assert again.status is Status.SUCCEEDED, again.errors
    assert again.progress.properties["physical_bytes_transferred"] == 50_000
    assert again.progress.properties["is_incremental"] is True
    assert blob_names(replica) == blob_names(data_dir / "snapshots")


def test_a_tampered_blob_fails_a_copy_by_the_processes(
    builtin_app: App, tmp_path: Path, data_dir: Path, by_processes: list[int]
) -> None:
    source = make_tree(tmp_path / "src", files=20, size=60_000)
    snapshot_id = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    store = data_dir / "snapshots"
    victim, (pack, offset, _) = max(stored(store).items(), key=lambda item: item[1][2])
    damage(pack, offset, 1)
    replica = tmp_path / "replica"
    copied = _run(builtin_app, "snapshot.copy", snapshot_ids=[snapshot_id], target=str(replica))
    assert copied.status is Status.FAILED
    assert copied.errors[-1].code == "ContentMismatch"
    assert victim in copied.errors[-1].message
    assert by_processes  # the processes took the copy
    assert not (replica / "manifests" / f"{snapshot_id}.json").exists()
    assert victim not in blob_names(replica)
