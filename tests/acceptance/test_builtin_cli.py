"""The built-in verbs through real processes: take/apply/export/import, and a worker killed mid-take."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from longrun.model import Gone, Status
from tests.acceptance.conftest import Cluster, until
from tests.builtin.conftest import dump, make_db, make_tree, tree_of

pytestmark = pytest.mark.acceptance


def _ok(cluster: Cluster, *args: str) -> str:
    done = cluster.cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_verbs_round_trip_a_tree_and_a_database(cluster: Cluster, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", files=20)
    take_id = _ok(cluster, "snapshot", "take", str(source))
    with cluster.client() as client:
        taken = client.wait(take_id, timeout=30)
    assert taken.status is Status.SUCCEEDED, taken.errors
    snapshot_id = taken.resource_location
    assert snapshot_id is not None and snapshot_id in _ok(cluster, "snapshot", "list")
    (listed_json,) = json.loads(_ok(cluster, "snapshot", "list", "--json"))
    assert listed_json["id"] == snapshot_id and listed_json["operation_id"] == take_id
    files = [p for p in source.rglob("*") if p.is_file()]
    assert (listed_json["files"], listed_json["source"]) == (len(files), str(source))
    assert listed_json["bytes"] == sum(p.stat().st_size for p in files)
    watched = cluster.cli("snapshot", "apply", snapshot_id, str(tmp_path / "out"), "--watch")
    assert watched.returncode == 0, watched.stderr
    assert tree_of(tmp_path / "out") == tree_of(source)
    db = make_db(tmp_path / "a.db")
    export_id = _ok(cluster, "backup", "export", str(db), str(tmp_path / "a.gz"))
    with cluster.client() as client:
        assert client.wait(export_id, timeout=30).status is Status.SUCCEEDED
        import_id = _ok(cluster, "backup", "import", str(tmp_path / "a.gz"), str(tmp_path / "b.db"))
        assert client.wait(import_id, timeout=30).status is Status.SUCCEEDED
        delete_id = _ok(cluster, "compartment", "delete", "default")
        deleted = client.wait(delete_id, timeout=30)
        with pytest.raises(Gone):  # the ended operations of the compartment are purged too
            client.get(take_id)
    assert dump(tmp_path / "b.db") == dump(db)
    listed = {
        kind: [r.identifier for r in deleted.resources if r.entity_type == kind]
        for kind in ("snapshot", "operation")
    }
    assert listed["snapshot"] == [snapshot_id]
    assert {take_id, export_id, import_id} < set(listed["operation"])
    assert len(listed["operation"]) == 4  # and the apply
    assert _ok(cluster, "snapshot", "list") == ""
    assert json.loads(_ok(cluster, "snapshot", "list", "--json")) == []


def test_a_worker_killed_mid_take_is_retried_into_a_correct_snapshot(
    cluster: Cluster, tmp_path: Path
) -> None:
    source = make_tree(tmp_path / "src", files=40, size=200_000)
    worker_a = cluster.procs[-1]
    with cluster.client() as client:
        op = client.submit(
            "snapshot.take", {"source": str(source), "throttle_bytes_per_second": 2_000_000}
        )
        until(lambda: client.get(op.id).percent_complete > 5, what="the take under way")
        worker_a.signal(signal.SIGKILL)
        worker_a.popen.wait(10)
        cluster.worker("worker-b")
        done = client.wait(op.id, timeout=60)
    assert done.status is Status.SUCCEEDED, done.errors
    assert done.attempt == 2
    snapshot_id = done.resource_location
    assert snapshot_id is not None
    out = tmp_path / "out"
    apply_id = _ok(cluster, "snapshot", "apply", snapshot_id, str(out))
    with cluster.client() as client:
        assert client.wait(apply_id, timeout=30).status is Status.SUCCEEDED
    assert tree_of(out) == tree_of(source)
    manifests = list((cluster.home / "longrun-data" / "snapshots" / "manifests").iterdir())
    assert [m.stem for m in manifests] == [snapshot_id]  # the killed attempt left no snapshot
    assert _ok(cluster, "snapshot", "list").split()[0] == snapshot_id
