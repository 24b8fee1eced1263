"""Many nodes on one PostgreSQL: 2 `serve --no-worker` + 3 `worker` processes; every operation runs
exactly once; a SIGKILLed worker is taken over; a PostgreSQL outage gives 503s, then recovery."""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from longrun.client import Client
from tests.acceptance.conftest import Cluster, Proc, free_port, until
from tests.store.conftest import fresh_postgres_database, requires_postgres

pytestmark = [pytest.mark.acceptance, requires_postgres]

OPERATIONS = int(os.environ.get("LONGRUN_ACCEPTANCE_OPERATIONS", "2000"))

# The operation type of these tests: it records every run (start and end) in one append-only file.
OPS_MODULE = """
import asyncio, os, time
from typing import Any
from longrun.engine.registry import App

app = App()

def _record(kind: str, ctx: Any) -> None:
    line = f"{kind} {ctx.operation_id} {ctx.attempt} {os.getpid()} {time.time():.6f}\\n"
    fd = os.open(os.environ["PGACC_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)

@app.operation("pgacc.record", max_attempts=5)
async def record(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
    _record("S", ctx)
    await asyncio.sleep(data.get("ms", 0) / 1000)
    _record("E", ctx)
    return {"pid": os.getpid()}
"""


@dataclass
class Run:
    op_id: str
    attempt: int
    pid: int
    start: float
    end: float | None


@dataclass
class PgCluster:
    """Two API servers and three workers on one fresh database."""

    db: str
    servers: list[Cluster]
    workers: list[Proc]
    record: Path

    def count(self, status: str = "SUCCEEDED") -> int:
        with psycopg.connect(self.db) as conn:
            row = conn.execute("SELECT count(*) FROM operations WHERE status = %s", (status,))
            return int(row.fetchone()[0])  # type: ignore[index]

    def submit(self, n: int, ms: int) -> list[str]:
        """Submit ``n`` operations, alternating between the servers, from 8 threads."""

        def batch(k: int) -> list[str]:
            with Client(self.servers[k % 2].url) as client:
                return [
                    client.submit("pgacc.record", {"ms": ms, "i": i}).id for i in range(k, n, 8)
                ]

        with ThreadPoolExecutor(8) as pool:
            return [op_id for ids in pool.map(batch, range(8)) for op_id in ids]

    def runs(self) -> dict[str, list[Run]]:
        """Every recorded handler run, by operation id."""
        found: dict[tuple[str, int, int], Run] = {}
        for line in self.record.read_text().splitlines():
            kind, op_id, attempt, pid, at = line.split()
            key = (op_id, int(attempt), int(pid))
            if kind == "S":
                found[key] = Run(op_id, int(attempt), int(pid), float(at), None)
            else:
                found[key].end = float(at)
        by_op: dict[str, list[Run]] = defaultdict(list)
        for run in sorted(found.values(), key=lambda r: r.start):
            by_op[run.op_id].append(run)
        return by_op


def _start(tmp_path: Path, db: str, lease: float) -> PgCluster:
    (tmp_path / "pgacc_ops.py").write_text(OPS_MODULE)
    record = tmp_path / "runs.log"
    env = {
        **os.environ,
        "LONGRUN_DB": db,
        "LONGRUN_APPS": '["pgacc_ops:app"]',
        "LONGRUN_LEASE_SECONDS": str(lease),
        "LONGRUN_REAPER_INTERVAL": "0.2",
        "LONGRUN_POLL_INTERVAL": "1.0",  # NOTIFY wakes idle workers; the poll is only a backstop
        "LONGRUN_FLUSH_INTERVAL": "0.1",
        "PYTHONPATH": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "PGACC_RECORD": str(record),
    }
    env.pop("LONGRUN_URL", None)
    servers = [Cluster(tmp_path, free_port(), env) for _ in range(2)]
    cluster = PgCluster(db, servers, [], record)
    for i, server in enumerate(servers):  # one Cluster per server port
        proc = server.serve()
        proc.log.rename(tmp_path / f"serve-{i}.log")  # the open descriptor follows the file
        proc.log = tmp_path / f"serve-{i}.log"
    cluster.workers = [servers[0].worker(f"worker-{i}") for i in range(3)]
    return cluster


@pytest.fixture
def pg_cluster(tmp_path: Path) -> Iterator[tuple[Path, str, list[PgCluster]]]:
    started: list[PgCluster] = []
    with fresh_postgres_database() as db:
        try:
            yield tmp_path, db, started
        finally:
            for cluster in started:
                for proc in [*cluster.workers, *(p for s in cluster.servers for p in s.procs)]:
                    proc.stop()


def test_many_nodes_run_every_operation_exactly_once(
    pg_cluster: tuple[Path, str, list[PgCluster]],
) -> None:
    tmp_path, db, started = pg_cluster
    cluster = _start(tmp_path, db, lease=30.0)
    started.append(cluster)
    began = time.monotonic()
    ids = cluster.submit(OPERATIONS, ms=0)
    submitted = time.monotonic() - began
    until(lambda: cluster.count() == OPERATIONS, timeout=180, what=f"{OPERATIONS} SUCCEEDED")
    elapsed = time.monotonic() - began
    runs = cluster.runs()
    assert sorted(runs) == sorted(ids)
    assert all(len(r) == 1 and r[0].attempt == 1 and r[0].end for r in runs.values())
    assert len({r[0].pid for r in runs.values()}) >= 2  # the work was shared
    for server in cluster.servers:  # every server sees every operation, finished
        with Client(server.url) as client:
            seen = {op.id: op.status.value for op in client.list(page_size=500)}
        assert set(seen) == set(ids) and set(seen.values()) == {"SUCCEEDED"}
    print(
        f"{OPERATIONS} operations through 2 servers and 3 workers in {elapsed:.1f}s"
        f" (submitted in {submitted:.1f}s)"
    )


def _pg_ctl(*args: str) -> None:
    runner = shlex.split(os.environ.get("LONGRUN_TEST_PGAS", ""))
    pg_ctl = str(Path(os.environ["LONGRUN_TEST_PGBIN"]) / "pg_ctl")
    data, log = os.environ["LONGRUN_TEST_PGDATA"], os.environ["LONGRUN_TEST_PGTMP"] + "/server.log"
    subprocess.run(
        [*runner, pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", *args],
        check=True,
        capture_output=True,
        timeout=90,
    )


@pytest.mark.skipif(not os.environ.get("LONGRUN_TEST_PGDATA"), reason="needs scripts/with-postgres")
def test_a_killed_worker_and_a_database_outage_lose_nothing(
    pg_cluster: tuple[Path, str, list[PgCluster]],
) -> None:
    tmp_path, db, started = pg_cluster
    cluster = _start(tmp_path, db, lease=2.0)
    started.append(cluster)
    total = 240
    ids = cluster.submit(total, ms=200)
    until(lambda: cluster.count() >= 30, timeout=60, what="30 SUCCEEDED")
    victim = cluster.workers[0]
    victim.signal(signal.SIGKILL)
    victim.popen.wait(10)
    killed_at = time.time()

    until(lambda: cluster.count() >= 90, timeout=60, what="90 SUCCEEDED")
    answers: list[tuple[int, str]] = []
    last: dict[str, tuple[int, str]] = {}  # each server's latest answer
    stop = threading.Event()

    def poll(url: str) -> None:  # an API client that keeps asking through the outage
        with httpx.Client(base_url=url, timeout=15) as http:
            while not stop.is_set():
                response = http.get(f"/v1/operations/{ids[0]}")
                code = response.json()["error"]["code"] if response.status_code != 200 else ""
                answers.append((response.status_code, code))
                last[url] = (response.status_code, code)
                time.sleep(0.05)

    pollers = [threading.Thread(target=poll, args=(s.url,)) for s in cluster.servers]
    for t in pollers:
        t.start()
    _pg_ctl("stop", "-m", "fast")
    try:
        until(lambda: sum(1 for a in answers if a[0] == 503) >= 4, timeout=30, what="503s")
    finally:
        _pg_ctl("start")
    until(lambda: cluster.count() == total, timeout=120, what="every operation SUCCEEDED")
    # every server answers again (each reconnects on its own, so wait for the slowest one)
    def recovered() -> bool:
        return len(last) == len(cluster.servers) and all(a == (200, "") for a in last.values())

    until(recovered, timeout=60, what="every server answering 200 again")
    stop.set()
    for t in pollers:
        t.join(20)
    assert {a for a in answers if a[0] != 200} == {(503, "StoreUnavailable")}  # never a 500

    runs = cluster.runs()
    assert sorted(runs) == sorted(ids)
    taken_over = 0
    for op_runs in runs.values():
        for before, after in itertools.pairwise(op_runs):  # never two at once
            assert before.end is not None or before.pid == victim.popen.pid
            assert after.start >= (before.end or killed_at), op_runs
        if op_runs[0].pid == victim.popen.pid and op_runs[0].end is None:
            taken_over += 1
            assert op_runs[-1].pid != victim.popen.pid and op_runs[-1].attempt >= 2
    assert taken_over >= 1  # the victim had operations in flight, and others finished them
