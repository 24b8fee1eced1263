"""snapshot.take and snapshot.apply, handler by handler, on generated trees."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from longrun.builtin import snapshot_apply
from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import RecordingContext, run_handler
from tests.builtin.conftest import make_tree, tree_of


def _take(app: App, source: Path, **more: Any) -> Any:
    return run_handler(app.get("snapshot.take"), {"source": str(source), **more})


def test_take_then_apply_gives_an_identical_tree(builtin_app: App, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    taken = _take(builtin_app, source)
    assert taken.status is Status.SUCCEEDED, taken.errors
    snapshot_id = taken.resource_location
    assert snapshot_id and snapshot_id.startswith("snap-")
    assert taken.progress.bytes_done == taken.progress.bytes_total > 0
    assert taken.progress.items_done == taken.progress.items_total == 42
    assert [r.identifier for r in taken.resources] == [snapshot_id]
    target = tmp_path / "restored"
    applied = run_handler(
        builtin_app.get("snapshot.apply"), {"snapshot_id": snapshot_id, "target": str(target)}
    )
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert applied.resource_location == str(target)
    assert tree_of(target) == tree_of(source)
    assert (target / "d1").stat().st_mode & 0o777 == 0o750
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_content_is_stored_once(builtin_app: App, tmp_path: Path, data_dir: Path) -> None:
    source = make_tree(tmp_path / "src", files=5)
    assert _take(builtin_app, source).status is Status.SUCCEEDED
    blobs = sorted((data_dir / "snapshots" / "blobs").rglob("*"))
    assert _take(builtin_app, source).status is Status.SUCCEEDED
    assert sorted((data_dir / "snapshots" / "blobs").rglob("*")) == blobs
    files = [p for p in blobs if p.is_file()]
    assert len(files) == len({p.read_bytes() for p in (source).rglob("*") if p.is_file()})


def test_a_single_file_snapshot(builtin_app: App, tmp_path: Path) -> None:
    source = tmp_path / "one.txt"
    source.write_text("hello")
    taken = _take(builtin_app, source)
    assert taken.status is Status.SUCCEEDED
    target = tmp_path / "out"
    applied = run_handler(
        builtin_app.get("snapshot.apply"),
        {"snapshot_id": taken.resource_location, "target": str(target)},
    )
    assert applied.status is Status.SUCCEEDED
    assert (target / "one.txt").read_text() == "hello"


def test_a_missing_source_fails_clearly(builtin_app: App, tmp_path: Path) -> None:
    run = _take(builtin_app, tmp_path / "nope")
    assert run.status is Status.FAILED
    assert run.errors[-1].code == "SourceNotFound"


class _Editor(RecordingContext):
    """Edits the source once, on the first progress report made while a file is read."""

    def __init__(self, *args: Any, edit: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._edit = edit
        self._done = threading.Event()

    def progress(self, percent: float | None = None, **kwargs: Any) -> None:
        super().progress(percent, **kwargs)
        if kwargs.get("bytes_done") and not self._done.is_set():
            self._done.set()
            self._edit()


def _take_while(app: App, source: Path, edit: Any) -> Any:
    import longrun.testing as testing

    original = testing.RecordingContext
    testing.RecordingContext = lambda *a, **k: _Editor(*a, edit=edit, **k)  # type: ignore[misc]
    try:
        return _take(app, source, threads=1)
    finally:
        testing.RecordingContext = original  # type: ignore[misc]


def test_an_edit_during_the_take_fails_naming_the_path(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    big = source / "big.bin"
    big.write_bytes(os.urandom(5 << 20))  # several chunks: the edit lands mid-read

    def edit() -> None:
        with big.open("ab") as handle:
            handle.write(b"more")

    run = _take_while(builtin_app, source, edit)
    assert run.status is Status.FAILED
    assert run.errors[-1].code == "SourceChanged"
    assert str(big) in run.errors[-1].message
    assert not list((data_dir / "snapshots" / "manifests").iterdir())


def test_a_file_appearing_during_the_take_fails(builtin_app: App, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=3)
    newcomer = source / "late.txt"
    run = _take_while(builtin_app, source, lambda: newcomer.write_text("late"))
    assert run.status is Status.FAILED
    assert str(newcomer) in run.errors[-1].message and "appeared" in run.errors[-1].message


def test_a_file_vanishing_during_the_take_fails(builtin_app: App, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a-big.bin").write_bytes(os.urandom(3 << 20))  # read first: the largest
    victim = source / "z.txt"
    victim.write_text("bye")
    run = _take_while(builtin_app, source, victim.unlink)
    assert run.status is Status.FAILED
    assert str(victim) in run.errors[-1].message and "vanished" in run.errors[-1].message


def test_a_folder_vanishing_during_the_take_fails_naming_its_file(
    builtin_app: App, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a-big.bin").write_bytes(os.urandom(3 << 20))  # read first: the largest
    gone = source / "sub" / "z.txt"
    gone.write_text("bye")
    run = _take_while(builtin_app, source, lambda: shutil.rmtree(source / "sub"))
    assert run.status is Status.FAILED and run.errors[-1].code == "SourceChanged"
    assert str(gone) in run.errors[-1].message and "vanished" in run.errors[-1].message


def _apply(app: App, snapshot_id: str, target: Path, **more: Any) -> Any:
    return run_handler(
        app.get("snapshot.apply"), {"snapshot_id": snapshot_id, "target": str(target), **more}
    )


def test_apply_refuses_a_non_empty_target_unless_asked(builtin_app: App, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=4)
    snapshot_id = _take(builtin_app, source).resource_location
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    refused = _apply(builtin_app, snapshot_id, target)
    assert refused.status is Status.FAILED and refused.errors[-1].code == "TargetNotEmpty"
    assert tree_of(target) == {"keep.txt": (b"mine", 0o644)}
    replaced = _apply(builtin_app, snapshot_id, target, replace=True)
    assert replaced.status is Status.SUCCEEDED
    assert tree_of(target) == tree_of(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "src", "target"]


def test_a_canceled_apply_leaves_the_target_as_it_was(builtin_app: App, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=30, size=200_000)
    snapshot_id = _take(builtin_app, source).resource_location
    target = tmp_path / "target"
    target.mkdir()
    (target / "old.txt").write_text("old")
    run = run_handler(
        builtin_app.get("snapshot.apply"),
        {"snapshot_id": snapshot_id, "target": str(target), "replace": True},
        cancel_after_progress=5,
    )
    assert run.status is Status.CANCELED
    assert tree_of(target) == {"old.txt": (b"old", 0o644)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "src", "target"]


def test_a_corrupt_blob_fails_the_apply(builtin_app: App, tmp_path: Path, data_dir: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("original")
    snapshot_id = _take(builtin_app, source).resource_location
    blob = next(p for p in (data_dir / "snapshots" / "blobs").rglob("*") if p.is_file())
    blob.write_text("tampered")
    run = _apply(builtin_app, snapshot_id, tmp_path / "out")
    assert run.status is Status.FAILED and run.errors[-1].code == "ContentMismatch"
    assert not (tmp_path / "out").exists()


def test_a_snapshot_of_another_compartment_is_not_found(builtin_app: App, tmp_path: Path) -> None:
    run = _apply(builtin_app, "snap-nothing", tmp_path / "out")
    assert run.status is Status.FAILED and run.errors[-1].code == "SnapshotNotFound"


def test_an_edit_of_the_target_during_the_apply_fails(builtin_app: App, tmp_path: Path) -> None:
    import longrun.testing as testing

    source = make_tree(tmp_path / "src", files=10)
    snapshot_id = _take(builtin_app, source).resource_location
    target = tmp_path / "target"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def edit() -> None:
        (target / "old.txt").write_text("someone else wrote this")

    original = testing.RecordingContext
    testing.RecordingContext = lambda *a, **k: _Editor(*a, edit=edit, **k)  # type: ignore[misc]
    try:
        run = _apply(builtin_app, snapshot_id, target, replace=True)
    finally:
        testing.RecordingContext = original  # type: ignore[misc]
    assert run.status is Status.FAILED and run.errors[-1].code == "TargetChanged"
    assert tree_of(target) == {"old.txt": (b"someone else wrote this", 0o644)}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_temp_names_stay_unique_in_a_forked_child(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "store")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: one temp name, through the pipe, then out without cleanup
        os.write(write, str(store.temp_path()).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        theirs = pipe.read().decode()
    os.waitpid(child, 0)
    assert theirs and theirs != str(store.temp_path())


def test_apply_makes_the_new_tree_durable_before_the_swap_and_the_swap_before_removing_the_old(
    builtin_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_tree(tmp_path / "src", files=6)
    taken = run_handler(builtin_app.get("snapshot.take"), {"source": str(source)})
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("the old tree")
    seen: list[tuple[str, Any]] = []

    def sync_filesystem(path: Path) -> None:  # what the disk is asked for, and what was where
        seen.append(("sync", (path.parent == tmp_path, (target / "old.txt").exists())))
        real_sync(path)

    def fsync_dir(path: Path) -> None:  # the old tree: exchanged into the stage, or moved aside
        kept = [p for p in tmp_path.iterdir() if p != target and (p / "old.txt").exists()]
        seen.append(("fsync_dir", (path, len(kept), (target / "old.txt").exists())))
        real_fsync_dir(path)

    real_sync, real_fsync_dir = snapshot_apply.sync_filesystem, snapshot_apply.fsync_dir
    monkeypatch.setattr(snapshot_apply, "sync_filesystem", sync_filesystem)
    monkeypatch.setattr(snapshot_apply, "fsync_dir", fsync_dir)
    applied = run_handler(
        builtin_app.get("snapshot.apply"),
        {"snapshot_id": taken.resource_location, "target": str(target), "replace": True},
    )
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert seen == [
        ("sync", (True, True)),  # the stage, next to the target, while the old tree is in place
        ("fsync_dir", (tmp_path, 1, False)),  # the swap, while the old tree is still on disk
    ]
    assert tree_of(target) == tree_of(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out", "src"]  # old tree gone
