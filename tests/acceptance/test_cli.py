"""The CLI end to end against real `serve` and `worker` processes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from longrun.model import Status
from tests.acceptance.conftest import Cluster, free_port, until

pytestmark = pytest.mark.acceptance

TOMORROW = datetime.now(UTC) + timedelta(days=1)


def test_submit_wait_status_list_logs(cluster: Cluster, tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"longrun" * 10_000)
    done = cluster.cli(
        "submit", "demo.hash", "--input", json.dumps({"path": str(target)}), "--wait"
    )
    assert done.returncode == 0, done.stderr
    op_id, status = done.stdout.split()
    assert status == "SUCCEEDED"

    shown = cluster.cli("status", op_id, "--json")
    assert shown.returncode == 0, shown.stderr
    wire = json.loads(shown.stdout)
    assert wire["id"] == op_id and wire["status"] == "SUCCEEDED"
    assert wire["result"]["digest"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert wire["percentComplete"] == 100 and wire["resourceLocation"] == str(target)

    human = cluster.cli("status", op_id)
    assert "SUCCEEDED" in human.stdout and op_id in human.stdout

    listed = cluster.cli("list", "--type", "demo.hash")
    assert listed.returncode == 0 and op_id in listed.stdout
    as_json = json.loads(cluster.cli("list", "--json", "--status", "SUCCEEDED").stdout)
    assert [op["id"] for op in as_json] == [op_id]
    assert json.loads(cluster.cli("list", "--json", "--status", "FAILED").stdout) == []

    logs = cluster.cli("logs", op_id)
    assert logs.returncode == 0 and "hashing" in logs.stdout
    assert any(
        "hashing" in e["message"] for e in json.loads(cluster.cli("logs", op_id, "--json").stdout)
    )

    types = json.loads(cluster.cli("types", "--json").stdout)
    assert {"demo.hash", "demo.sleep"} <= {t["name"] for t in types["items"]}


def test_input_from_a_file_and_a_failure_exit_code(cluster: Cluster, tmp_path: Path) -> None:
    spec = tmp_path / "input.json"
    spec.write_text(json.dumps({"path": str(tmp_path / "missing")}), encoding="utf-8")
    failed = cluster.cli("submit", "demo.hash", "--input", f"@{spec}", "--wait")
    assert failed.returncode == 1
    assert failed.stdout.split()[1] == "FAILED"
    assert "FileNotFound" in failed.stderr


def test_watch_draws_until_succeeded(cluster: Cluster) -> None:
    submitted = cluster.cli("submit", "demo.sleep", "--input", '{"seconds": 1.5, "steps": 10}')
    assert submitted.returncode == 0, submitted.stderr
    op_id = submitted.stdout.strip()
    watched = cluster.cli("watch", op_id, "--interval", "0.1")
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.strip().splitlines()[-1] == f"{op_id} SUCCEEDED"
    assert "100.0%" in watched.stderr  # the bar's last frame

    inline = cluster.cli("submit", "demo.sleep", "--input", '{"seconds": 0.5}', "--watch")
    assert inline.returncode == 0, inline.stderr
    assert inline.stdout.strip().endswith("SUCCEEDED")


def test_cancel_a_running_operation(cluster: Cluster) -> None:
    op_id = cluster.cli(
        "submit", "demo.sleep", "--input", '{"seconds": 600, "steps": 600}'
    ).stdout.strip()
    with cluster.client() as client:
        until(lambda: client.get(op_id).status is Status.IN_PROGRESS, what="running")
        canceled = cluster.cli("cancel", op_id)
        assert canceled.returncode == 0, canceled.stderr
        assert canceled.stdout.split()[1] in {"CANCELING", "CANCELED"}
        assert client.wait(op_id, timeout=20).status is Status.CANCELED
    watched = cluster.cli("watch", op_id)
    assert watched.returncode == 1
    assert watched.stdout.strip() == f"{op_id} CANCELED"
    again = cluster.cli("cancel", op_id)
    assert again.returncode == 2 and again.stderr.startswith("IllegalTransition: ")


def test_hold_and_release(cluster: Cluster) -> None:
    with cluster.client() as client:
        # a not_before in the future keeps it ACCEPTED while we hold it
        op = client.submit("demo.sleep", {"seconds": 0}, not_before=TOMORROW)
    held = cluster.cli("hold", op.id, "--reason", "maintenance", "--json")
    assert held.returncode == 0 and json.loads(held.stdout)["status"] == "ON_HOLD"
    released = cluster.cli("release", op.id)
    assert released.stdout.split() == [op.id, "ACCEPTED"]


def test_errors_and_exit_codes(cluster: Cluster) -> None:
    missing = cluster.cli("status", "01a0a0a0-0000-7000-8000-000000000000")
    assert missing.returncode == 2 and missing.stderr.startswith("NotFound: ")
    bad = cluster.cli("submit", "demo.sleep", "--input", '{"seconds": -1}')
    assert (
        bad.returncode == 2 and bad.stderr.startswith("InvalidInput: ") and "seconds" in bad.stderr
    )
    not_json = cluster.cli("submit", "demo.sleep", "--input", "{nope")
    assert not_json.returncode == 2 and "--input is not JSON" in not_json.stderr
    nobody = cluster.cli("--url", f"http://127.0.0.1:{free_port()}", "list")
    assert nobody.returncode == 3 and nobody.stderr.startswith("Unreachable: ")
