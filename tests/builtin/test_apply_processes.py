"""snapshot.apply through the worker processes: the same tree, tamper and loss caught, cancel and
a killed worker leaving the target as it was or finished by threads."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longrun.builtin import snapshot_apply, worker_pool
from longrun.builtin.pack_file import read_footer
from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import run_handler
from tests.builtin.conftest import content_at, make_tree, tree_of
from tests.builtin.conftest import damage as spoil

pytestmark = pytest.mark.usefixtures("in_processes")


@pytest.fixture
def by_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The files the threads wrote (the real ``_write_file`` still runs)."""
    written: list[str] = []
    real = snapshot_apply._write_file

    def counting(*args: Any) -> None:
        real(*args)
        written.append(args[-1].path)

    monkeypatch.setattr(snapshot_apply, "_write_file", counting)
    yield written


def _taken(app: App, source: Path) -> str:
    taken = run_handler(app.get("snapshot.take"), {"source": str(source)})
    assert taken.status is Status.SUCCEEDED, taken.errors
    return str(taken.resource_location)


def _apply(app: App, snapshot_id: str, target: Path, **more: Any) -> Any:
    return run_handler(
        app.get("snapshot.apply"), {"snapshot_id": snapshot_id, "target": str(target), **more}
    )


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".apply-" in p.name)


def test_an_apply_in_processes_gives_the_same_tree_with_modes_and_mtimes(
    builtin_app: App, tmp_path: Path, by_threads: list[str]
) -> None:
    source = make_tree(tmp_path / "src")
    snapshot_id = _taken(builtin_app, source)
    applied = _apply(builtin_app, snapshot_id, tmp_path / "out")
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert worker_pool.worker_pids()
    assert by_threads == []  # every file went through the processes
    assert tree_of(tmp_path / "out") == tree_of(source)
    assert _mtimes(tmp_path / "out") == _mtimes(source)
    assert applied.progress.bytes_done == applied.progress.bytes_total > 0
    assert applied.progress.items_done == applied.progress.items_total == 42
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["tampered", "missing"])
def test_a_bad_blob_fails_the_apply_in_processes_and_leaves_the_target_as_it_was(
    builtin_app: App, tmp_path: Path, data_dir: Path, damage: str
) -> None:
    source = make_tree(tmp_path / "src")
    victim = source / "d1" / "e1" / "f1.bin"
    snapshot_id = _taken(builtin_app, source)
    content = victim.read_bytes()
    held, offset = content_at(data_dir / "snapshots", content)
    assert held.suffix == ".pack"  # the processes packed it
    if damage == "tampered":
        spoil(held, offset, len(content))
    else:
        lost = {digest for digest, _, _ in read_footer(str(held))[1]}
        held.unlink()
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    before = tree_of(target)
    applied = _apply(builtin_app, snapshot_id, target, replace=True)
    assert applied.status is Status.FAILED, applied.status
    error = applied.errors[-1]
    if damage == "tampered":
        assert error.code == "ContentMismatch" and "d1/e1/f1.bin" in error.message
    else:
        assert error.code == "BlobMissing" and any(d in error.message for d in lost)
    assert tree_of(target) == before
    assert _leftovers(tmp_path) == []


def test_a_canceled_apply_in_processes_stops_promptly_and_leaves_the_target_as_it_was(
    builtin_app: App, tmp_path: Path
) -> None:
    source = make_tree(tmp_path / "src", files=8)
    (source / "big.bin").write_bytes(os.urandom(96 << 20))  # a job of many chunks, in flight
    snapshot_id = _taken(builtin_app, source)
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    before = tree_of(target)
    started = time.monotonic()
    applied = run_handler(
        builtin_app.get("snapshot.apply"),
        {"snapshot_id": snapshot_id, "target": str(target), "replace": True},
        cancel_after_progress=2,
    )
    assert applied.status is Status.CANCELED, (applied.status, applied.errors)
    assert time.monotonic() - started < 5.0
    assert tree_of(target) == before
    assert _leftovers(tmp_path) == []
    pids = worker_pool.worker_pids()
    assert pids and all(Path(f"/proc/{pid}").exists() for pid in pids)  # the pool lives on


def test_a_killed_worker_process_leaves_the_rest_of_the_apply_to_threads(
    builtin_app: App, tmp_path: Path, on_progress: Any, by_threads: list[str]
) -> None:
    source = make_tree(tmp_path / "src", files=200, size=400_000)  # ~10 jobs for 3 workers
    (source / "big.bin").write_bytes(os.urandom(64 << 20))  # half-written when the kill comes
    snapshot_id = _taken(builtin_app, source)
    killed = worker_pool.worker_pids()
    assert killed
    on_progress(lambda: [os.kill(pid, signal.SIGKILL) for pid in killed])
    applied = _apply(builtin_app, snapshot_id, tmp_path / "out")
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert by_threads  # what the dead workers had, threads wrote (over any half-written file)
    assert tree_of(tmp_path / "out") == tree_of(source)
    assert _mtimes(tmp_path / "out") == _mtimes(source)
    assert not set(worker_pool.worker_pids()) & set(killed)
    assert _leftovers(tmp_path) == []
