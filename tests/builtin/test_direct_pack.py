"""A worker's packs written past the page cache by their sealing thread: whole blocks, found while
on their way, dropped when their run stopped, failures reported to their own run's flush."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from longrun.builtin import direct_pack, worker_pool
from longrun.builtin.content_hash import new_hasher
from longrun.builtin.direct_pack import ALIGN, CAPACITY, DirectPack, Sealer
from longrun.builtin.pack_file import read_footer
from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import run_handler
from tests.builtin.conftest import stored, tree_of


def _folders(root: Path) -> tuple[Path, Path]:
    (root / "tmp").mkdir(parents=True)
    (root / "packs").mkdir()
    return root / "tmp", root / "packs"


def _fill(pack: DirectPack, contents: list[bytes]) -> list[str]:
    """Each content read into the pack's room and committed, as a worker does; the digests."""
    digests = []
    for data in contents:
        room = pack.room()
        room[: len(data)] = data
        digest = new_hasher("blake3", room[: len(data)]).hexdigest()
        pack.commit(digest, len(data))
        digests.append(digest)
    return digests


def _seal(sealer: Sealer, pack: DirectPack, run: int = 1, stopped: bool = False) -> list[str]:
    """Hand ``pack`` over; the paths it landed at once ``flush`` returns."""
    landed: list[str] = []
    sealer.seal(pack, run, lambda: stopped, landed.append)
    return landed


def _readable(path: str) -> dict[str, bytes]:
    """Each content of a pack by digest, checked against it."""
    algorithm, entries = read_footer(path)
    data = Path(path).read_bytes()
    found = {}
    for digest, offset, size in entries:
        content = data[offset : offset + size]
        assert new_hasher(algorithm, content).hexdigest() == digest
        found[digest] = content
    return found


def test_a_sealed_pack_is_whole_blocks_and_holds_each_content(tmp_path: Path) -> None:
    tmp, packs = _folders(tmp_path)
    sealer = Sealer()
    pack = sealer.open(str(tmp / "p1"), str(packs), "blake3")
    contents = [os.urandom(n) for n in (1, 4095, 4096, 70_001, (1 << 20) - 1)]
    digests = _fill(pack, contents)
    landed = _seal(sealer, pack)
    sealer.flush(1)
    (path,) = landed
    assert Path(path).parent == packs and os.path.getsize(path) % ALIGN == 0
    assert _readable(path) == dict(zip(digests, contents, strict=True))
    assert list(tmp.iterdir()) == []


def test_more_than_a_buffer_holds_is_written_as_it_comes(tmp_path: Path) -> None:
    tmp, packs = _folders(tmp_path)
    sealer = Sealer(buffers=1)
    pack = sealer.open(str(tmp / "big"), str(packs), "blake3")
    contents = [os.urandom(900_000 + n) for n in range(2 * CAPACITY // 900_000 + 1)]
    assert sum(map(len, contents)) > 2 * CAPACITY
    digests = _fill(pack, contents)
    landed = _seal(sealer, pack)
    sealer.flush(1)
    assert landed == [str(packs / "big.pack")]
    assert _readable(landed[0]) == dict(zip(digests, contents, strict=True))
    assert os.path.getsize(landed[0]) % ALIGN == 0


def test_an_uncommitted_room_is_not_kept(tmp_path: Path) -> None:
    tmp, packs = _folders(tmp_path)
    sealer = Sealer()
    pack = sealer.open(str(tmp / "p"), str(packs), "blake3")
    pack.room()[:5] = b"found"  # hashed, found stored already: not committed
    (digest,) = _fill(pack, [b"kept"])
    _seal(sealer, pack)
    sealer.flush(1)
    assert _readable(str(packs / "p.pack")) == {digest: b"kept"}


def test_an_empty_or_dropped_pack_leaves_no_file_and_frees_its_buffer(tmp_path: Path) -> None:
    tmp, packs = _folders(tmp_path)
    sealer = Sealer(buffers=1)
    assert _seal(sealer, sealer.open(str(tmp / "empty"), str(packs), "blake3")) == []
    sealer.flush(1)
    pack = sealer.open(str(tmp / "dropped"), str(packs), "blake3")
    _fill(pack, [os.urandom((1 << 20) - 1) for _ in range((CAPACITY >> 20) - 1)])
    pack.room()  # past the buffer: its first blocks are in the temp file already
    assert (tmp / "dropped").exists()
    sealer.drop(pack)
    stopped = sealer.open(str(tmp / "stopped"), str(packs), "blake3")  # the one buffer, again
    _fill(stopped, [b"of a stopped run"])
    assert _seal(sealer, stopped, stopped=True) == []
    sealer.flush(1)
    assert list(tmp.iterdir()) == [] and list(packs.iterdir()) == []
    opened: list[DirectPack] = []
    thread = threading.Thread(
        target=lambda: opened.append(sealer.open(str(tmp / "x"), str(packs), "blake3"))
    )
    thread.start()
    thread.join(10)
    assert opened  # the buffer came back every time


def test_content_on_its_way_to_disk_is_found(tmp_path: Path) -> None:
    tmp, packs = _folders(tmp_path)
    sealer = Sealer()
    first = sealer.open(str(tmp / "first"), str(packs), "blake3")
    (digest,) = _fill(first, [b"on its way"])
    go = threading.Event()
    landed: list[str] = []

    def held() -> bool:  # the sealing thread waits here, with the pack not written yet
        go.wait(10)
        return False

    sealer.seal(first, 1, held, landed.append)
    second = sealer.open(str(tmp / "second"), str(packs), "blake3")
    assert second.has(digest) and not (packs / "first.pack").exists()
    go.set()
    sealer.flush(1)
    assert landed == [str(packs / "first.pack")]
    assert not second.has(digest)  # landed: the index the worker keeps has it from now on


def test_a_failed_seal_fails_its_own_runs_flush_only(tmp_path: Path) -> None:
    tmp, packs = _folders(tmp_path)
    sealer = Sealer()
    gone = str(tmp_path / "no such folder")
    old = sealer.open(str(tmp / "old"), gone, "blake3")
    _fill(old, [b"of a run that was stopped"])
    _seal(sealer, old, run=1)
    sealer.flush(2)  # run 2 ends well: run 1's failure is not its own
    failing = sealer.open(str(tmp / "failing"), gone, "blake3")
    _fill(failing, [b"cannot be moved into place"])
    _seal(sealer, failing, run=2)
    with pytest.raises(FileNotFoundError):
        sealer.flush(2)
    assert list(tmp.iterdir()) == [] and list(packs.iterdir()) == []  # the temp files went
    sealer.flush(2)  # reported once


def test_without_direct_writes_packs_go_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_pack, "_DIRECT", 0)  # a platform without O_DIRECT
    tmp, packs = _folders(tmp_path)
    sealer = Sealer()
    pack = sealer.open(str(tmp / "p"), str(packs), "blake3")
    digests = _fill(pack, [b"a" * 5000, b"b" * 10])
    _seal(sealer, pack)
    sealer.flush(1)
    assert set(_readable(str(packs / "p.pack"))) == set(digests)
    assert os.path.getsize(packs / "p.pack") % ALIGN == 0


def _small_files(root: Path, files: int = 120) -> Path:
    """``files`` files of 400-800 KiB: about forty jobs, each packed."""
    root.mkdir(parents=True)
    for n in range(files):
        (root / f"f{n:03d}.bin").write_bytes(os.urandom(400_000 + 3_000 * n))
    return root


@pytest.mark.usefixtures("in_processes")
def test_a_take_in_processes_writes_whole_block_packs(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = _small_files(tmp_path / "src", files=30)
    taken = run_handler(builtin_app.get("snapshot.take"), {"source": str(source)})
    assert taken.status is Status.SUCCEEDED, taken.errors
    packs = list((data_dir / "snapshots" / "packs").iterdir())
    assert len(packs) > 1 and all(p.stat().st_size % ALIGN == 0 for p in packs)
    assert len(stored(data_dir / "snapshots")) == 30


@pytest.mark.usefixtures("in_processes")
def test_packs_lost_with_killed_workers_are_stored_again(
    builtin_app: App, tmp_path: Path, data_dir: Path, on_progress: Callable[[Any], None]
) -> None:
    """A worker replies before its pack lands: killed then, the pack is lost, and the take must
    not count that content as stored."""
    source = _small_files(tmp_path / "src")
    warm = run_handler(builtin_app.get("snapshot.take"), {"source": str(source / "f000.bin")})
    assert warm.status is Status.SUCCEEDED
    run_handler(builtin_app.get("snapshot.take"), {"source": str(_small_files(tmp_path / "w", 4))})
    killed = worker_pool.worker_pids()
    assert killed
    on_progress(lambda: [os.kill(pid, signal.SIGKILL) for pid in killed])
    taken = run_handler(builtin_app.get("snapshot.take"), {"source": str(source)})
    assert taken.status is Status.SUCCEEDED, taken.errors
    on_progress(lambda: None)
    target = tmp_path / "out"
    applied = run_handler(
        builtin_app.get("snapshot.apply"),
        {"snapshot_id": taken.resource_location, "target": str(target)},
    )
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert tree_of(target) == tree_of(source)
    assert list((data_dir / "snapshots" / "tmp").iterdir()) == []
