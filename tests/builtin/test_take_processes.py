"""snapshot.take through its worker processes: the same snapshot, edits caught, cancel, a kill."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from longrun.builtin import worker_pool
from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import run_handler
from tests.builtin.conftest import make_tree, stored, tree_of

pytestmark = pytest.mark.usefixtures("in_processes")


def _batches_tree(root: Path, files: int = 40) -> Path:
    """``files`` files of 1 MiB (about ten jobs of four files) and a tiny one, read last."""
    root.mkdir(parents=True)
    block = os.urandom(1 << 20)
    for n in range(files):
        (root / f"f{n:03d}.bin").write_bytes(n.to_bytes(4, "big") + block[4:])
    (root / "zz.txt").write_text("small, so read last")
    return root


def _take(app: App, source: Path, **more: Any) -> Any:
    return run_handler(app.get("snapshot.take"), {"source": str(source), **more})


def _restored(app: App, snapshot_id: str, target: Path) -> dict[str, Any]:
    applied = run_handler(
        app.get("snapshot.apply"), {"snapshot_id": snapshot_id, "target": str(target)}
    )
    assert applied.status is Status.SUCCEEDED, applied.errors
    return tree_of(target)


def test_a_take_in_processes_gives_the_same_tree_and_stores_content_once(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src")
    taken = _take(builtin_app, source)
    assert taken.status is Status.SUCCEEDED, taken.errors
    assert worker_pool.worker_pids()  # the processes did it
    assert taken.progress.bytes_done == taken.progress.bytes_total > 0
    assert taken.progress.items_done == taken.progress.items_total == 42
    assert _restored(builtin_app, taken.resource_location, tmp_path / "out") == tree_of(source)
    store = data_dir / "snapshots"
    held = stored(store)
    assert len(held) == len({p.read_bytes() for p in source.rglob("*") if p.is_file()})
    assert {path.suffix for path, _, _ in held.values()} == {".pack"}  # small files: packed
    files = sorted(p for p in store.rglob("*") if p.is_file())
    assert len(files) < len(held)  # fewer files than contents
    again = _take(builtin_app, source)
    assert again.status is Status.SUCCEEDED
    assert stored(store) == held
    assert sorted(p for p in store.rglob("*") if p.is_file() and "manifests" not in p.parts) == [
        p for p in files if "manifests" not in p.parts
    ]  # nothing written again
    assert list((data_dir / "snapshots" / "tmp").iterdir()) == []


@pytest.mark.parametrize("what", ["changed", "vanished"])
def test_an_edit_during_a_take_in_processes_fails_naming_the_path(
    builtin_app: App, tmp_path: Path, data_dir: Path, on_progress: Any, what: str
) -> None:
    source = _batches_tree(tmp_path / "src")
    small = source / "zz.txt"
    # the first job's outcome comes back before the last jobs are handed out
    on_progress(lambda: small.write_text("edited!") if what == "changed" else small.unlink())
    run = _take(builtin_app, source)
    assert run.status is Status.FAILED, run.status
    assert run.errors[-1].code == "SourceChanged"
    assert str(small) in run.errors[-1].message and what in run.errors[-1].message
    assert list((data_dir / "snapshots" / "manifests").iterdir()) == []
    assert list((data_dir / "snapshots" / "tmp").iterdir()) == []


def test_a_canceled_take_in_processes_stops_promptly_and_leaves_nothing(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = _batches_tree(tmp_path / "src", files=8)
    (source / "big.bin").write_bytes(os.urandom(96 << 20))  # a job of many chunks, in flight
    started = time.monotonic()
    run = run_handler(
        builtin_app.get("snapshot.take"), {"source": str(source)}, cancel_after_progress=2
    )
    assert run.status is Status.CANCELED, (run.status, run.errors)
    assert time.monotonic() - started < 5.0
    assert list((data_dir / "snapshots" / "manifests").iterdir()) == []
    assert list((data_dir / "snapshots" / "tmp").iterdir()) == []
    pids = worker_pool.worker_pids()
    assert pids and all(Path(f"/proc/{pid}").exists() for pid in pids)  # the pool lives on


def test_a_killed_worker_process_leaves_the_rest_to_threads(
    builtin_app: App, tmp_path: Path, data_dir: Path, on_progress: Any
) -> None:
    source = _batches_tree(tmp_path / "src")
    assert _take(builtin_app, source / "zz.txt").status is Status.SUCCEEDED
    _take(builtin_app, make_tree(tmp_path / "warm", files=4))  # the pool is up
    killed = worker_pool.worker_pids()
    assert killed
    on_progress(lambda: [os.kill(pid, signal.SIGKILL) for pid in killed])
    taken = _take(builtin_app, source)
    assert taken.status is Status.SUCCEEDED, taken.errors
    assert taken.progress.items_done == 41
    on_progress(lambda: None)
    assert _restored(builtin_app, taken.resource_location, tmp_path / "out") == tree_of(source)
    assert list((data_dir / "snapshots" / "tmp").iterdir()) == []
    again = _take(builtin_app, make_tree(tmp_path / "more", files=4, seed=2))
    assert again.status is Status.SUCCEEDED
    assert worker_pool.worker_pids() and not set(worker_pool.worker_pids()) & set(killed)
