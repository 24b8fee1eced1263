"""PostgreSQL: lifecycle throughput with 1 and 4 worker processes next to Procrastinate on the same
server in the same run, and claim latency (submit → IN_PROGRESS) with idle workers.

Run: scripts/with-postgres .venv/bin/python bench/bench_postgres.py [--n 4000]
(or --db postgresql://… of a server where this user may CREATE DATABASE). Prints figures.
Each scenario gets a fresh database; both systems are driven the same way, in two modes:

- drain (what the issue's target compares): the workers start and go idle; the N no-op
  operations (jobs) are submitted due at one moment a little later (longrun ``notBefore``,
  Procrastinate ``schedule_at``), so that the whole backlog is there when it becomes runnable
  (both sides find it by their poll, 0.1 s). lifecycle/s = N / (last end - first start), from
  the stored timestamps.
- steady: the workers idle, then ``--submitters`` processes submit N between them (64 in flight
  each) while the workers run; lifecycle/s = N / (last end - first submit), stored timestamps.
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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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
POLL = "0.1"  # both systems' poll interval: it only matters when the drain's backlog is released
LONGRUN_SPAN = {
    "drain": "SELECT extract(epoch FROM max(time_finished) - min(time_started)) FROM operations",
    "steady": "SELECT extract(epoch FROM max(time_finished) - min(time_accepted)) FROM operations",
}
PROCRASTINATE_SPAN = {
    mode: "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded')"
    f" - min(at) FILTER (WHERE type = '{first}')) FROM procrastinate_events"
    for mode, first in (("drain", "started"), ("steady", "deferred"))
}


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


def count(db: str, sql: str) -> float:
    with psycopg.connect(db) as conn:
        row = conn.execute(sql).fetchone()
    return float(row[0]) if row and row[0] is not None else 0


def submitters(system: str, db: str, n: int, count_: int) -> list[list[str]]:
    """The commands of ``count_`` submitting processes that submit ``n`` between them."""
    shares = [n // count_ + (1 if i < n % count_ else 0) for i in range(count_)]
    return [[sys.executable, __file__, "--submit", system, db, "--n", str(k)] for k in shares if k]


class TooLate(Exception):
    """The backlog of a drain was not all submitted before it became runnable."""


def due_time(n: int, tries: int) -> datetime:
    """When a drain's backlog becomes runnable: time enough to submit it all first."""
    return datetime.now(UTC) + timedelta(seconds=(3 + n / 250) * 2**tries)


def check_due(due: datetime) -> None:
    if datetime.now(UTC) >= due:
        raise TooLate


def retried(bench: Callable[[int], float]) -> float:
    """Run a scenario; a drain whose backlog was late is run again with twice the margin."""
    for tries in range(3):
        with contextlib.suppress(TooLate):
            return bench(tries)
    raise RuntimeError("the backlog was never submitted before it was due")


def run_all(cmds: list[list[str]], env: dict[str, str]) -> None:
    """Start the submitters, let them all begin at once (when each is connected), wait for them."""
    procs = [subprocess.Popen(c, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for c in cmds]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("a submitter failed")


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
            "LONGRUN_DB": db, "LONGRUN_WORKER_SLOTS": str(slots), "LONGRUN_POLL_INTERVAL": POLL,
            "LONGRUN_APPS": '["noop_app:app"]'}


def _ready(gate: bool) -> None:
    """A submitter process: say it is connected, and start when told to."""
    if gate:
        print("ready", flush=True)
        sys.stdin.readline()


async def _submit_all(db: str, n: int, due: datetime | None = None, gate: bool = False) -> None:
    store = open_store(db)
    await store.open()
    try:
        service = Service(store, noop_app)
        _ready(gate)
        for start in range(0, n, BATCH):
            await asyncio.gather(*(service.submit("bench.noop", {}, not_before=due)
                                   for _ in range(min(BATCH, n - start))))
    finally:
        await store.close()


def bench_longrun(server: str, n: int, workers: int, slots: int, mode: str, subs: int,
                  tries: int = 0) -> float:
    with fresh_database(server) as db:
        asyncio.run(_open_once(db))  # the schema exists before the workers start
        env = _longrun_env(db, slots)
        with processes([[*LONGRUN, "worker"]] * workers, env, "worker started"):
            if mode == "drain":
                due = due_time(n, tries)
                asyncio.run(_submit_all(db, n, due))
                check_due(due)
            else:
                run_all(submitters("longrun", db, n, subs), env)
            _wait_done(db, "SELECT count(*) FROM operations WHERE status = 'SUCCEEDED'", n)
        return n / count(db, LONGRUN_SPAN[mode])


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
        await app.run_worker_async(concurrency=concurrency, wait=True, listen_notify=True,
                                   fetch_job_polling_interval=float(POLL),
                                   install_signal_handlers=True)


async def _procrastinate_schema(db: str) -> None:
    app = procrastinate_app(db)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def _procrastinate_defer(db: str, n: int, due: datetime | None = None,
                               gate: bool = False) -> None:
    app = procrastinate_app(db)
    async with app.open_async():
        task = app.tasks["noop"]
        _ready(gate)
        deferrer = task.configure(schedule_at=due) if due else task
        for start in range(0, n, BATCH):
            await asyncio.gather(*(deferrer.defer_async() for _ in range(min(BATCH, n - start))))


def bench_procrastinate(server: str, n: int, workers: int, concurrency: int, mode: str,
                        subs: int, tries: int = 0) -> float:
    with fresh_database(server) as db:
        asyncio.run(_procrastinate_schema(db))
        cmd = [sys.executable, __file__, "--procrastinate-worker", db, "--concurrency", str(concurrency)]
        with processes([cmd] * workers, dict(os.environ), "procrastinate worker started"):
            if mode == "drain":
                due = due_time(n, tries)
                asyncio.run(_procrastinate_defer(db, n, due))
                check_due(due)
            else:
                run_all(submitters("procrastinate", db, n, subs), dict(os.environ))
            _wait_done(db, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'", n)
        return n / count(db, PROCRASTINATE_SPAN[mode])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=os.environ.get("LONGRUN_TEST_POSTGRES"))
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--slots", type=int, default=32, help="longrun slots per worker process")
    parser.add_argument("--concurrency", type=int, default=32, help="procrastinate's, per worker")
    parser.add_argument("--submitters", type=int, default=2, help="submitting processes (steady)")
    parser.add_argument("--modes", default="drain,steady")
    parser.add_argument("--samples", type=int, default=300, help="claim-latency samples")
    parser.add_argument("--procrastinate-worker", help=argparse.SUPPRESS)
    parser.add_argument("--submit", nargs=2, metavar=("SYSTEM", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.procrastinate_worker:
        asyncio.run(_procrastinate_worker(args.procrastinate_worker, args.concurrency))
        return
    if args.submit:
        system, db = args.submit
        submit = _submit_all if system == "longrun" else _procrastinate_defer
        asyncio.run(submit(db, args.n, gate=True))
        return
    if not args.db:
        parser.error("no server: pass --db or run under scripts/with-postgres")
    rows = []
    for mode in args.modes.split(","):
        for workers in (1, 4):
            theirs = retried(lambda t: bench_procrastinate(
                args.db, args.n, workers, args.concurrency, mode, args.submitters, t))  # noqa: B023
            ours = retried(lambda t: bench_longrun(
                args.db, args.n, workers, args.slots, mode, args.submitters, t))  # noqa: B023
            target = " (the issue's target: >= 5x)" if (mode, workers) == ("drain", 4) else ""
            rows.append((f"{mode}, {workers} worker process(es){target}",
                         f"procrastinate {theirs:,.0f}/s, longrun {ours:,.0f}/s, ratio {ours / theirs:.1f}x"))
    latency = bench_claim_latency(args.db, 4, args.samples)
    figures = ", ".join(f"{k} {v:,.1f}" for k, v in latency.items())
    rows.append((f"claim latency, 4 idle workers, {args.samples} samples", figures))
    print_table(f"PostgreSQL, {args.n} no-op operations (jobs) per run, lifecycle/s; longrun slots "
                f"{args.slots}, procrastinate concurrency {args.concurrency}, steady-state "
                f"submitters {args.submitters}", rows)


if __name__ == "__main__":
    main()
