"""The snapshot store's formats: new stores name content by BLAKE3, first-format stores (SHA-256,
no ``store.json``) stay readable, keep their hash and share content with their old snapshots."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import blake3
import pytest

from longrun.builtin import default_app
from longrun.builtin.snapshot_manifest import FileEntry, Manifest, encode_entry
from longrun.builtin.snapshot_store import SnapshotStore
from longrun.engine.registry import App
from longrun.model import OperationError, Status
from longrun.testing import run_handler
from tests.builtin.conftest import blob_names, make_tree, tree_of


def _run(app: App, kind: str, **payload: Any) -> Any:
    return run_handler(app.get(kind), payload)


def _manifest(store: Path, snapshot_id: str) -> dict[str, Any]:
    return dict(json.loads((store / "manifests" / f"{snapshot_id}.json").read_text()))


def _first_format_store(root: Path, source: Path, snapshot_id: str) -> set[str]:
    """What the first format wrote for a snapshot of ``source``, written here independently:
    blobs by SHA-256, no ``store.json``, file entries keyed ``sha256``, no ``hash``. Returns
    the digests."""
    files, dirs = [], [[".", source.stat().st_mode & 0o7777]]
    for path in sorted(source.rglob("*")):
        rel, st = str(path.relative_to(source)), path.stat()
        if path.is_dir():
            dirs.append([rel, st.st_mode & 0o7777])
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        blob = root / "blobs" / digest[:2] / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(path.read_bytes())
        files.append(
            {
                "path": rel,
                "size": st.st_size,
                "mode": st.st_mode & 0o7777,
                "mtime_ns": st.st_mtime_ns,
                "sha256": digest,
            }
        )
    manifest = {
        "id": snapshot_id,
        "compartment_id": "test",  # run_handler's
        "source": str(source),
        "kind": "dir",
        "created": 1.0,
        "files": files,
        "dirs": dirs,
    }
    (root / "manifests").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "manifests" / f"{snapshot_id}.json").write_text(json.dumps(manifest))
    return {f["sha256"] for f in files}


def test_a_new_store_names_content_by_blake3(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src", files=12)
    taken = _run(builtin_app, "snapshot.take", source=str(source))
    assert taken.status is Status.SUCCEEDED, taken.errors
    store = data_dir / "snapshots"
    assert json.loads((store / "store.json").read_text()) == {"format": 3, "hash": "blake3"}
    manifest = _manifest(store, taken.resource_location)
    assert manifest["hash"] == "blake3"
    for entry in manifest["files"]:
        content = (source / entry["path"]).read_bytes()
        assert entry["digest"] == blake3.blake3(content).hexdigest()
        assert (store / "blobs" / entry["digest"][:2] / entry["digest"]).read_bytes() == content


def test_a_first_format_store_is_read_and_stays_on_sha256(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src", files=12)
    store = data_dir / "snapshots"
    digests = _first_format_store(store, source, "snap-old")
    applied = _run(
        builtin_app, "snapshot.apply", snapshot_id="snap-old", target=str(tmp_path / "a")
    )
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert tree_of(tmp_path / "a") == tree_of(source)
    # a new take of the same tree: SHA-256 still, so it stores nothing new
    taken = _run(builtin_app, "snapshot.take", source=str(source))
    assert taken.status is Status.SUCCEEDED, taken.errors
    assert json.loads((store / "store.json").read_text()) == {"format": 1, "hash": "sha256"}
    assert _manifest(store, taken.resource_location)["hash"] == "sha256"
    assert blob_names(store) == digests


def test_a_first_format_snapshot_copies_into_a_new_store_and_back(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src", files=12)
    digests = _first_format_store(data_dir / "snapshots", source, "snap-old")
    other = tmp_path / "other"  # the replica is the snapshot store of another data dir
    replica = other / "snapshots"
    copied = _run(builtin_app, "snapshot.copy", snapshot_ids=["snap-old"], target=str(replica))
    assert copied.status is Status.SUCCEEDED, copied.errors
    assert blob_names(replica) == digests
    assert _manifest(replica, "snap-old")["hash"] == "sha256"
    # a new store: its own takes use BLAKE3, and it applies the old snapshot all the same
    assert json.loads((replica / "store.json").read_text())["hash"] == "blake3"
    app = default_app(SimpleNamespace(data_dir=str(other)))
    applied = _run(app, "snapshot.apply", snapshot_id="snap-old", target=str(tmp_path / "b"))
    assert applied.status is Status.SUCCEEDED, applied.errors
    assert tree_of(tmp_path / "b") == tree_of(source)


@pytest.mark.parametrize("algorithm", ["first format", "blake3"])
def test_tampered_content_is_refused_by_apply_and_copy(
    builtin_app: App, tmp_path: Path, data_dir: Path, algorithm: str
) -> None:
    source = make_tree(tmp_path / "src", files=6)
    store = data_dir / "snapshots"
    if algorithm == "first format":
        _first_format_store(store, source, "snap-old")
        snapshot_id = "snap-old"
    else:
        snapshot_id = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    victim = max((p for p in (store / "blobs").rglob("*") if p.is_file()), key=os.path.getsize)
    victim.write_bytes(b"X" + victim.read_bytes()[1:])
    target = tmp_path / "restored"
    applied = _run(builtin_app, "snapshot.apply", snapshot_id=snapshot_id, target=str(target))
    assert applied.status is Status.FAILED
    assert applied.errors[-1].code == "ContentMismatch"
    assert not target.exists()
    replica = tmp_path / "replica"
    copied = _run(builtin_app, "snapshot.copy", snapshot_ids=[snapshot_id], target=str(replica))
    assert copied.status is Status.FAILED
    assert copied.errors[-1].code == "ContentMismatch"
    assert not (replica / "manifests" / f"{snapshot_id}.json").exists()
    assert victim.name not in blob_names(replica)


@pytest.mark.parametrize(
    "text",
    ["not json", '{"format": 3}', '{"format": 3, "hash": "md5"}', '{"format": 4, "hash": "blake3"}'],
)
def test_a_store_format_file_that_is_not_one_fails_the_take_clearly(
    builtin_app: App, tmp_path: Path, data_dir: Path, text: str
) -> None:
    source = make_tree(tmp_path / "src", files=3)
    store = data_dir / "snapshots"
    store.mkdir(parents=True)
    (store / "store.json").write_text(text)
    taken = _run(builtin_app, "snapshot.take", source=str(source))
    assert taken.status is Status.FAILED
    assert taken.errors[-1].code == "SnapshotStoreInvalid"
    assert "store.json" in taken.errors[-1].message
    assert (store / "store.json").read_text() == text
    assert not (store / "manifests").exists()


def test_a_store_object_follows_its_format_file(tmp_path: Path) -> None:
    assert SnapshotStore(tmp_path / "new").ensure().algorithm == "blake3"
    assert json.loads((tmp_path / "new" / "store.json").read_text())["hash"] == "blake3"
    legacy = tmp_path / "legacy"
    (legacy / "blobs").mkdir(parents=True)
    assert SnapshotStore(legacy).ensure().algorithm == "sha256"
    assert SnapshotStore(legacy).ensure().algorithm == "sha256"  # now from store.json
    assert [p.name for p in legacy.iterdir() if p.name.startswith(".")] == []


def test_a_manifest_of_an_unknown_hash_fails_the_apply_clearly(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src", files=3)
    snapshot_id = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    path = data_dir / "snapshots" / "manifests" / f"{snapshot_id}.json"
    path.write_text(path.read_text().replace('"hash":"blake3"', '"hash":"md5"'))
    target = tmp_path / "restored"
    applied = _run(builtin_app, "snapshot.apply", snapshot_id=snapshot_id, target=str(target))
    assert applied.status is Status.FAILED
    assert applied.errors[-1].code == "SnapshotStoreInvalid"
    assert "md5" in applied.errors[-1].message
    assert not target.exists()


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("path", "../escaped.bin"),
        ("path", "/tmp/escaped.bin"),
        ("path", "d0/./f.bin"),
        ("digest", "../../../../escaped"),
        ("dir", "../escaped-dir"),
    ],
)
def test_a_manifest_that_points_outside_fails_the_apply_and_writes_nothing(
    builtin_app: App, tmp_path: Path, data_dir: Path, field: str, bad: str
) -> None:
    source = make_tree(tmp_path / "work" / "src", files=3)
    snapshot_id = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    path = data_dir / "snapshots" / "manifests" / f"{snapshot_id}.json"
    raw = json.loads(path.read_text())
    if field == "dir":
        raw["dirs"].append([bad, 0o755])
    else:
        raw["files"][0][field] = bad
    path.write_text(json.dumps(raw))
    (tmp_path / "escaped").write_bytes(b"a file outside the store")  # what the digest names
    before = sorted(p.name for p in tmp_path.rglob("*"))
    target = tmp_path / "work" / "restored"
    for kind, payload in (
        ("snapshot.apply", {"snapshot_id": snapshot_id}),
        ("snapshot.copy", {"snapshot_ids": [snapshot_id]}),
    ):
        run = _run(builtin_app, kind, target=str(target), **payload)
        assert run.status is Status.FAILED, (kind, run.status)
        assert run.errors[-1].code == "SnapshotStoreInvalid", run.errors
        assert repr(bad) in run.errors[-1].message
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_gc_collects_nothing_while_a_manifest_cannot_be_read(
    builtin_app: App, tmp_path: Path, data_dir: Path
) -> None:
    source = make_tree(tmp_path / "src", files=3)
    snapshot_id = _run(builtin_app, "snapshot.take", source=str(source)).resource_location
    store = SnapshotStore(data_dir / "snapshots")
    blobs = blob_names(store.root)
    for blob in (store.root / "blobs").rglob("*"):
        os.utime(blob, (1.0, 1.0))  # old enough to collect, were it unreferenced
    path = store.manifest_path(snapshot_id)
    path.write_text(path.read_text().replace('"hash":"blake3"', '"hash":"md5"'))
    with pytest.raises(OperationError) as caught:
        store.gc()
    assert caught.value.code == "SnapshotStoreInvalid"
    assert blob_names(store.root) == blobs
    path.unlink()  # once the operator removed it, the blobs are unreferenced: collected
    assert store.gc() == len(blobs)
    assert blob_names(store.root) == set()


def test_a_manifest_encoded_entry_by_entry_is_the_same_json() -> None:
    files = [
        FileEntry('a "quoted" name', 3, 0o644, 1_700_000_000_123_456_789, "ab" * 32),
        FileEntry("dé/ñ\\x.txt", 0, 0o600, 0, "cd" * 32),
    ]
    dirs = [(".", 0o755), ("dé", 0o700)]
    manifest = Manifest("snap-1", "c1", "/src", "dir", 1.5, files, dirs, "blake3")
    whole = {
        **{k: v for k, v in vars(manifest).items() if k not in ("files", "dirs")},
        "files": [vars(f) for f in files],
        "dirs": [list(d) for d in manifest.dirs],
    }
    text = manifest.to_json([encode_entry(f) for f in files])
    assert text == manifest.to_json() == json.dumps(whole, separators=(",", ":"))
    assert Manifest.from_json(text) == manifest
    empty = Manifest("snap-2", "c1", "/src/f", "file", 2.0, [], [(".", 0)], "blake3")
    assert Manifest.from_json(empty.to_json([])) == empty
