"""Workers that die or stall: leases expire, another worker takes over, late writes are refused."""

from __future__ import annotations

import signal

import pytest

from longrun.client import Client
from longrun.model import Operation, Status
from tests.acceptance.conftest import Cluster, until

pytestmark = pytest.mark.acceptance

LEASE_TIMEOUT = 30.0  # lease (2 s) + reaper (0.2 s) + backoff + a new claim, with room to spare


def _running_on_a_worker(client: Client, op_id: str) -> Operation:
    """Wait until the operation runs and has reported progress; return that state."""

    def running() -> Operation | None:
        op = client.get(op_id)
        if op.status is Status.IN_PROGRESS and op.percent_complete > 0 and op.worker_id:
            return op
        return None

    return until(running, what=f"{op_id} in progress")


def test_a_killed_worker_is_replaced_and_the_retry_succeeds(cluster: Cluster) -> None:
    worker_a = cluster.procs[-1]
    with cluster.client() as client:
        op = client.submit("demo.sleep", {"seconds": 3, "steps": 30}, max_attempts=2)
        first = _running_on_a_worker(client, op.id)
        assert first.attempt == 1
        worker_a.signal(signal.SIGKILL)
        worker_a.popen.wait(10)
        cluster.worker("worker-b")
        done = client.wait(op.id, timeout=LEASE_TIMEOUT)
    assert done.status is Status.SUCCEEDED, done.errors
    assert done.attempt == 2 and done.result["attempt"] == 2
    assert done.worker_id != first.worker_id


def test_a_killed_worker_with_no_attempts_left_fails_with_worker_lost(cluster: Cluster) -> None:
    worker_a = cluster.procs[-1]
    with cluster.client() as client:
        op = client.submit("demo.sleep", {"seconds": 30, "steps": 30}, max_attempts=1)
        _running_on_a_worker(client, op.id)
        worker_a.signal(signal.SIGKILL)
        worker_a.popen.wait(10)
        cluster.worker("worker-b")
        done = client.wait(op.id, timeout=LEASE_TIMEOUT)
    assert done.status is Status.FAILED
    assert [e.code for e in done.errors] == ["WorkerLost"]
    assert done.attempt == 1


def test_a_stalled_worker_cannot_overwrite_the_work_of_its_successor(cluster: Cluster) -> None:
    worker_a = cluster.procs[-1]
    with cluster.client() as client:
        op = client.submit("demo.sleep", {"seconds": 2, "steps": 20}, max_attempts=2)
        stalled = _running_on_a_worker(client, op.id)
        worker_a.signal(signal.SIGSTOP)
        cluster.worker("worker-b")
        final = client.wait(op.id, timeout=LEASE_TIMEOUT)
        assert final.status is Status.SUCCEEDED, final.errors
        assert final.attempt == 2 and final.worker_id != stalled.worker_id

        worker_a.signal(signal.SIGCONT)
        # the stalled worker wakes up, tries to write for its old lease and is refused
        until(
            lambda: f"lost the lease of {op.id}" in worker_a.output(),
            timeout=20,
            what="the stalled worker noticing it lost the lease",
        )
        assert worker_a.stop() == 0  # it also shuts down cleanly after that
        after = client.get(op.id)
    keep = ("status", "result", "worker_id", "attempt", "time_finished", "percent_complete")
    assert {k: getattr(after, k) for k in keep} == {k: getattr(final, k) for k in keep}
    assert after.logs == final.logs
