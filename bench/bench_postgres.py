"""PostgreSQL: lifecycle throughput with 1 and 4 worker processes next to Procrastinate on the same
server in the same run, and claim latency (submit → IN_PROGRESS) with idle workers.

Run: scripts/with-postgres .venv/bin/python bench/bench_postgres.py [--n 4000]
(or --db postgresql://… of a server where this user may CREATE DATABASE). Prints figures.
Each scenario gets a fresh database. Workers are started first and left idle, then the N no-op
operations (jobs) are submitted from this process, 64 at a time, as fast as the submitter can;
lifecycle/s is N over the time from the first submit to the last SUCCEEDED (succeeded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, percentile, print_table
from noop_app import app as noop_app

from longrun.service import Service
from longrun.store import open_store

LONGRUN = [sys.executable, "-m", "longrun.cli"]
BATCH = 64


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def count(db: str, sql: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def processes(cmds: list[list[str]], env: dict[str, str], ready: str) -> Iterator[None]:
    """Start the processes, wait until each logged ``ready``; terminate them afterwards."""
    logs = [tempfile.NamedTemporaryFile(prefix="bench-pg-", suffix=".log", delete=False) for _ in cmds]  # noqa: SIM115
    procs = [subprocess.Popen(c, env=env, stdout=log, stderr=subprocess.STDOUT) for c, log in zip(cmds, logs, strict=True)]
    try:
        deadline = time.monotonic() + 60
        for proc, log in zip(procs, logs, strict=True):
            while ready not in Path(log.name).read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(Path(log.name).read_text(errors="replace")[-3000:])
                time.sleep(0.05)
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            os.unlink(log.name)


def _wait_done(db: str, sql: str, n: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while (done := count(db, sql)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done} of {n} done after {timeout}s")
        time.sleep(0.02)
    return time.perf_counter()


# longrun ---------------------------------------------------------------------------------------
def _longrun_env(db: str, slots: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'bench'}:{os.environ.get('PYTHONPATH', '')}",
            "LONGRUN_DB": db, "LONGRUN_WORKER_SLOTS": str(slots), "LONGRUN_POLL_INTERVAL": "1.0",
            "LONGRUN_APPS": '["noop_app:app"]'}


async def _submit_all(db: str, n: int) -> float:
    store = open_store(db)
    await store.open()
    try:
        service = Service(store, noop_app)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            await asyncio.gather(*(service.submit("bench.noop", {}) for _ in range(min(BATCH, n - start))))
        return t0
    finally:
        await store.close()


def bench_longrun(server: str, n: int, workers: int, slots: int) -> dict[str, float]:
    with fresh_database(server) as db:
        asyncio.run(_open_once(db))  # the schema exists before the workers start
        with processes([[*LONGRUN, "worker"]] * workers, _longrun_env(db, slots), "worker started"):
            t0 = asyncio.run(_submit_all(db, n))
            t1 = time.perf_counter()
            t2 = _wait_done(db, "SELECT count(*) FROM operations WHERE status = 'SUCCEEDED'", n)
    return {"submit/s": n / (t1 - t0), "lifecycle/s": n / (t2 - t0)}


async def _open_once(db: str) -> None:
    store = open_store(db)
    await store.open()
    await store.close()


async def _latencies(db: str, samples: int) -> list[float]:
    store = open_store(db)
    await store.open()
    try:
        service = Service(store, noop_app)
        ids = []
        for _ in range(samples):
            ids.append((await service.submit("bench.noop", {}))[0].id)
            await asyncio.sleep(0.02)  # the workers are idle again before the next one
        await asyncio.sleep(0.5)
        found = []
        for op_id in ids:
            op = await store.get(op_id)
            assert op is not None and op.time_started is not None, op
            found.append((op.time_started - op.time_accepted).total_seconds())
        return found
    finally:
        await store.close()


def bench_claim_latency(server: str, workers: int, samples: int) -> dict[str, float]:
    with fresh_database(server) as db:
        asyncio.run(_open_once(db))
        with processes([[*LONGRUN, "worker"]] * workers, _longrun_env(db, 8), "worker started"):
            time.sleep(0.5)  # let the LISTEN connections settle
            lat = asyncio.run(_latencies(db, samples))
    return {"p50 ms": percentile(lat, 50) * 1000, "p99 ms": percentile(lat, 99) * 1000,
            "max ms": max(lat) * 1000}


# procrastinate ---------------------------------------------------------------------------------
def procrastinate_app(db: str):  # type: ignore[no-untyped-def]
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=db))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    return app


async def _procrastinate_worker(db: str, concurrency: int) -> None:
    app = procrastinate_app(db)
    async with app.open_async():
        print("procrastinate worker started", flush=True)
        await app.run_worker_async(concurrency=concurrency, wait=True, install_signal_handlers=True)


async def _procrastinate_schema(db: str) -> None:
    app = procrastinate_app(db)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def _procrastinate_defer(db: str, n: int) -> float:
    app = procrastinate_app(db)
    async with app.open_async():
        task = app.tasks["noop"]
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            await asyncio.gather(*(task.defer_async() for _ in range(min(BATCH, n - start))))
        return t0


def bench_procrastinate(server: str, n: int, workers: int, concurrency: int) -> dict[str, float]:
    with fresh_database(server) as db:
        asyncio.run(_procrastinate_schema(db))
        cmd = [sys.executable, __file__, "--procrastinate-worker", db, "--concurrency", str(concurrency)]
        with processes([cmd] * workers, dict(os.environ), "procrastinate worker started"):
            t0 = asyncio.run(_procrastinate_defer(db, n))
            t1 = time.perf_counter()
            t2 = _wait_done(db, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'", n)
    return {"submit/s": n / (t1 - t0), "lifecycle/s": n / (t2 - t0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=os.environ.get("LONGRUN_TEST_POSTGRES"))
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--slots", type=int, default=32, help="longrun slots per worker process")
    parser.add_argument("--concurrency", type=int, default=32, help="procrastinate's, per worker")
    parser.add_argument("--samples", type=int, default=300, help="claim-latency samples")
    parser.add_argument("--procrastinate-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.procrastinate_worker:
        asyncio.run(_procrastinate_worker(args.procrastinate_worker, args.concurrency))
        return
    if not args.db:
        parser.error("no server: pass --db or run under scripts/with-postgres")
    fmt = lambda d: ", ".join(f"{k} {v:,.1f}" for k, v in d.items())  # noqa: E731
    results = {}
    for workers in (1, 4):
        results[("procrastinate", workers)] = bench_procrastinate(args.db, args.n, workers, args.concurrency)
        results[("longrun", workers)] = bench_longrun(args.db, args.n, workers, args.slots)
    latency = bench_claim_latency(args.db, 4, args.samples)
    rows = [(f"{name}, {w} worker process(es)", fmt(r)) for (name, w), r in results.items()]
    for w in (1, 4):
        ratio = results[("longrun", w)]["lifecycle/s"] / results[("procrastinate", w)]["lifecycle/s"]
        rows.append((f"ratio longrun / procrastinate, {w} worker(s)", f"{ratio:.1f}x"))
    rows.append((f"claim latency, 4 idle workers, {args.samples} samples", fmt(latency)))
    print_table(f"PostgreSQL, {args.n} no-op operations (jobs) per run, "
                f"longrun slots {args.slots}, procrastinate concurrency {args.concurrency}", rows)


if __name__ == "__main__":
    main()
