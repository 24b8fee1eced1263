"""Pack files: written whole or not at all, found by the index, collected only when all dead, and
a store's format deciding whether its takes pack."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import blake3
import pytest

from longrun.builtin import default_app, take_worker
from longrun.builtin.pack_file import PackInvalid, PackWriter, read_footer
from longrun.builtin.pack_index import PackIndex
from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import run_handler
from tests.builtin.conftest import damage, make_tree, stored, tree_of


def _run(app: App, kind: str, **payload: Any) -> Any:
    done = run_handler(app.get(kind), payload)
    assert done.status is Status.SUCCEEDED, done.errors
    return done


def _pack(folder: Path, name: str, contents: list[bytes]) -> Path:
    (folder / "tmp").mkdir(exist_ok=True)
    (folder / "packs").mkdir(exist_ok=True)
    writer = PackWriter(str(folder / "tmp" / name), str(folder / "packs"), "blake3")
    for content in contents:
        writer.append(blake3.blake3(content).hexdigest(), memoryview(content))
    path = writer.seal()
    assert path is not None
    return Path(path)


def test_a_sealed_pack_holds_each_content_at_its_offset(tmp_path: Path) -> None:
    contents = [b"alpha" * 100, b"", b"gamma" * 3000]
    pack = _pack(tmp_path, "p1", contents)
    assert list((tmp_path / "tmp").iterdir()) == []  # moved into place, nothing left
    algorithm, entries = read_footer(str(pack))
    assert algorithm == "blake3"
    data = pack.read_bytes()
    assert [data[o : o + s] for _, o, s in entries] == contents
    assert [d for d, _, _ in entries] == [blake3.blake3(c).hexdigest() for c in contents]


def test_a_pack_with_nothing_appended_or_discarded_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "packs").mkdir()
    assert PackWriter(str(tmp_path / "t1"), str(tmp_path / "packs"), "blake3").seal() is None
    writer = PackWriter(str(tmp_path / "t2"), str(tmp_path / "packs"), "blake3")
    writer.append("ab" * 32, memoryview(b"x" * 1000))
    writer.discard()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["packs"]


def _past_the_contents(data: bytes) -> bytes:
    """The first record's offset moved past the contents (records: 48 bytes each, before the
    JSON header; offset at 32-40)."""
    first = data.index(b'{"hash"') - 2 * 48
    return data[: first + 32] + (10**6).to_bytes(8, "little") + data[first + 40 :]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data[:-1],  # truncated: no trailer
        lambda data: data[:10],  # shorter than a trailer
        lambda data: data[:-16] + (10**9).to_bytes(8, "little") + data[-8:],  # length too big
        lambda data: data.replace(b'"blobs"', b'"blobz"'),  # a header without its count
        lambda data: data.replace(b'"blobs":2', b'"blobs":9'),  # more records than it holds
        _past_the_contents,
    ],
)
def test_a_damaged_footer_is_refused(tmp_path: Path, spoil: Any) -> None:
    pack = _pack(tmp_path, "p1", [b"one" * 50, b"two" * 50])
    pack.write_bytes(spoil(pack.read_bytes()))
    with pytest.raises(PackInvalid, match=r"p1\.pack"):
        read_footer(str(pack))


def test_the_index_follows_packs_as_they_come_and_go(tmp_path: Path) -> None:
    first = _pack(tmp_path, "p1", [b"one" * 50])
    index = PackIndex(str(tmp_path / "packs"))
    index.refresh()
    one = blake3.blake3(b"one" * 50).hexdigest()
    assert index.locate(one) == (str(first), 0, 150)
    _pack(tmp_path, "p2", [b"two" * 50])
    (tmp_path / "packs" / "junk.pack").write_bytes(b"not a pack at all")
    index.refresh()  # the folder changed within the second: listed again
    assert index.locate(blake3.blake3(b"two" * 50).hexdigest()) is not None
    assert "junk.pack" in index.invalid
    first.unlink()
    index.refresh(force=True)
    assert index.locate(one) is None
    assert not index.touch(one)


def _age(store: SnapshotStore) -> None:
    for pack in store.packs.iterdir():
        os.utime(pack, (1.0, 1.0))  # old enough to collect


def test_gc_removes_dead_packs_and_rewrites_mostly_dead_ones(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    old = make_tree(tmp_path / "old", files=150, seed=1)  # 64 files a job: 3 packs
    new = make_tree(tmp_path / "new", files=30, seed=2)  # shares dup-a/dup-b with old
    old_id = _run(builtin_app, "snapshot.take", source=str(old)).resource_location
    held = stored(data_dir / "snapshots")
    new_id = _run(builtin_app, "snapshot.take", source=str(new)).resource_location
    store = SnapshotStore(data_dir / "snapshots").ensure()
    _age(store)
    live = {entry.digest for entry in store.load(new_id).files}
    shared = live & set(held)
    assert blake3.blake3(b"same content" * 100).hexdigest() in shared
    shares = {held[digest][0] for digest in shared}  # old packs the new snapshot needs
    assert {path for path, _, _ in held.values()} - shares  # and some it does not
    store.remove(old_id)
    assert store.gc(min_age=60) == len(held) - len(shared)
    assert set(stored(store.root)) == live  # the dead content is gone, all of it
    assert not any(path.exists() for path, _, _ in held.values())  # even in the shared pack
    assert list(store.tmp.iterdir()) == []
    _run(builtin_app, "snapshot.apply", snapshot_id=new_id, target=str(tmp_path / "out"))
    assert tree_of(tmp_path / "out") == tree_of(new)


def _two_snapshots(app: App, tmp_path: Path, changed: int) -> tuple[str, str, Path]:
    """A tree of 40 files taken, ``changed`` of them rewritten, taken again; the first
    snapshot's pack."""
    source = make_tree(tmp_path / "src", files=40, size=20_000, seed=3)
    first = _run(app, "snapshot.take", source=str(source)).resource_location
    (pack,) = (tmp_path / "data" / "snapshots" / "packs").iterdir()
    for path in sorted(source.rglob("f*.bin"))[:changed]:
        path.write_bytes(os.urandom(20_000))
    second = _run(app, "snapshot.take", source=str(source)).resource_location
    return first, second, pack


@pytest.mark.parametrize(("changed", "rewritten"), [(2, False), (20, True)])
def test_a_pack_is_rewritten_only_when_enough_of_it_is_dead(
    builtin_app: App,
    tmp_path: Path,
    data_dir: Path,
    in_processes: None,
    changed: int,
    rewritten: bool,
) -> None:
    first, second, pack = _two_snapshots(builtin_app, tmp_path, changed)
    store = SnapshotStore(data_dir / "snapshots").ensure()
    inode = pack.stat().st_ino
    _age(store)
    store.remove(first)
    store.gc(min_age=60)
    assert (not pack.exists()) is rewritten
    if not rewritten:
        assert pack.stat().st_ino == inode  # left as it was: 2 of 40 files dead
    live = {entry.digest for entry in store.load(second).files}
    assert live <= set(stored(store.root))
    out = tmp_path / "out"
    _run(builtin_app, "snapshot.apply", snapshot_id=second, target=str(out))
    assert tree_of(out) == tree_of(tmp_path / "src")


def test_a_pack_whose_live_content_is_damaged_is_not_rewritten(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    first, second, pack = _two_snapshots(builtin_app, tmp_path, 20)
    store = SnapshotStore(data_dir / "snapshots").ensure()
    live = {entry.digest for entry in store.load(second).files}
    _, offset, size = next(
        where for d, where in stored(store.root).items() if d in live and where[0] == pack
    )
    damage(pack, offset, size)
    _age(store)
    store.remove(first)
    store.gc(min_age=60)
    assert pack.exists()  # not copied on: the apply will say which file is wrong
    assert list(store.tmp.iterdir()) == []
    applied = run_handler(
        builtin_app.get("snapshot.apply"), {"snapshot_id": second, "target": str(tmp_path / "o")}
    )
    assert applied.status is Status.FAILED and applied.errors[-1].code == "ContentMismatch"


def test_content_is_found_again_after_its_pack_was_rewritten_under_a_reader(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    first, second, pack = _two_snapshots(builtin_app, tmp_path, 20)
    reader = SnapshotStore(data_dir / "snapshots").ensure()
    reader.index.refresh()
    live = {entry.digest for entry in reader.load(second).files}
    digest = next(d for d, where in stored(reader.root).items() if d in live and where[0] == pack)
    assert reader.locate(digest)[0] == str(pack)
    collector = SnapshotStore(data_dir / "snapshots").ensure()
    _age(collector)
    collector.remove(first)
    collector.gc(min_age=60)
    assert not pack.exists()
    fd, size = reader.open_content(digest)  # its index still says the old pack: it looks again
    try:
        data = os.read(fd, size)
    finally:
        os.close(fd)
    assert blake3.blake3(data).hexdigest() == digest


def test_an_unreadable_pack_is_kept_by_gc_and_the_take_goes_on(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    store = SnapshotStore(data_dir / "snapshots").ensure()
    junk = store.packs / "junk.pack"
    junk.write_bytes(b"not a pack at all")
    os.utime(junk, (1.0, 1.0))
    source = make_tree(tmp_path / "src", files=12)
    taken = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    assert store.gc(min_age=0) == 0
    assert junk.exists()
    _run(builtin_app, "snapshot.apply", snapshot_id=taken, target=str(tmp_path / "out"))
    assert tree_of(tmp_path / "out") == tree_of(source)


def test_a_take_on_threads_finds_content_the_processes_packed(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    source = make_tree(tmp_path / "src", files=20)
    _run(builtin_app, "snapshot.take", source=str(source))
    store = data_dir / "snapshots"
    files = sorted(p for p in store.rglob("*") if p.is_file() and "manifests" not in p.parts)
    _run(builtin_app, "snapshot.take", source=str(source), threads=1)  # threads=1: no processes
    assert sorted(p for p in store.rglob("*") if p.is_file() and "manifests" not in p.parts) == (
        files
    )


def test_a_second_format_store_keeps_writing_blob_files(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    store = data_dir / "snapshots"
    store.mkdir(parents=True)
    (store / "store.json").write_text(json.dumps({"format": 2, "hash": "blake3"}))
    source = make_tree(tmp_path / "src", files=20)
    taken = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    assert {path.parent.parent.name for path, _, _ in stored(store).values()} == {"blobs"}
    assert not list(store.glob("packs/*"))
    _run(builtin_app, "snapshot.apply", snapshot_id=taken, target=str(tmp_path / "out"))
    assert tree_of(tmp_path / "out") == tree_of(source)
    assert json.loads((store / "store.json").read_text())["format"] == 2


def test_a_copy_on_threads_reads_packed_content_and_checks_it(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    source = make_tree(tmp_path / "src", files=20)
    taken = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    replica = tmp_path / "other" / "snapshots"
    copy = {"snapshot_ids": [taken], "target": str(replica), "threads": 1}  # 1: no processes
    copied = _run(builtin_app, "snapshot.copy", **copy)
    held = stored(data_dir / "snapshots")
    assert copied.progress.properties["physical_bytes_transferred"] == sum(
        size for _, _, size in held.values()
    )
    assert set(stored(replica)) == set(held)
    app = default_app(SimpleNamespace(data_dir=str(tmp_path / "other")))
    _run(app, "snapshot.apply", snapshot_id=taken, target=str(tmp_path / "out"))
    assert tree_of(tmp_path / "out") == tree_of(source)
    # a packed content spoiled in the source: the copy to a fresh target fails and names it
    victim, (pack, offset, size) = max(held.items(), key=lambda item: item[1][2])
    damage(pack, offset, size)
    failed = run_handler(builtin_app.get("snapshot.copy"), {**copy, "target": str(tmp_path / "r2")})
    assert failed.status is Status.FAILED
    assert failed.errors[-1].code == "ContentMismatch" and victim in failed.errors[-1].message


class _NeverStopped:
    value = -1  # the abort epoch: no run was stopped


def test_a_worker_finds_what_it_packed_earlier_in_the_same_run(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("a", "b"):
        (source / name).write_bytes(b"same bytes" * 1000)
    (source / "c").write_bytes(b"other" * 1000)
    store = SnapshotStore(tmp_path / "store").ensure()
    w = store.writer
    state = take_worker._State(_NeverStopped())

    def job(*names: str) -> list[Any]:
        files = []
        for name in names:
            st = (source / name).stat()
            files.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
        head = ("store", 1, w.blobs, w.tmp, w.prefix, w.algorithm, str(store.packs))
        return take_worker._store((*head, str(source), files), state)

    first = job("a", "c")
    second = job("b")  # the same run (epoch 1): the packs are not listed again
    state.flush(1)  # the first pack may have been on its way still: found all the same
    assert [written for _, _, written in first] == [10_000, 5_000]
    assert second == [(first[0][0], 10_000, 0)]  # found in the first job's pack: not written
    assert len(list(store.packs.iterdir())) == 1


def test_an_apply_whose_pack_was_damaged_fails_naming_the_pack(
    builtin_app: App, tmp_path: Path, data_dir: Path, in_processes: None
) -> None:
    source = make_tree(tmp_path / "src", files=12)
    taken = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    (pack,) = (data_dir / "snapshots" / "packs").iterdir()
    pack.write_bytes(pack.read_bytes()[:-1])  # its trailer cut: the records cannot be found
    target = tmp_path / "out"
    applied = run_handler(
        builtin_app.get("snapshot.apply"), {"snapshot_id": taken, "target": str(target)}
    )
    assert applied.status is Status.FAILED
    error = applied.errors[-1]
    assert error.code == "BlobMissing"
    assert pack.name in error.message and "cannot be read" in error.message
    assert not target.exists()
