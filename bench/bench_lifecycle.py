"""Lifecycle throughput on SQLite (submit → claim → no-op → SUCCEEDED) next to Huey, and GET latency.

Run: .venv/bin/python bench/bench_lifecycle.py [--n 5000] [--repeat 3]. Prints medians; asserts
nothing. Huey's SqliteHuey is the baseline, measured in the same run on the same disk: its tasks
are enqueued one by one and drained by calling the consumer's own dequeue/execute in a loop (no
polling delay, so the baseline is, if anything, flattered). Durability is compared like for
like: Huey's default leaves SQLite's synchronous=FULL (the WAL is synced at every commit) while
longrun's default is NORMAL (a commit survives the process, not a power cut), so each ratio
divides by Huey at the same setting: longrun NORMAL / Huey NORMAL, longrun FULL / Huey FULL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, print_table, start_server
from _wrk import has_wrk, wrk_get_ids, wrk_post_json
from noop_app import app

from longrun.engine.worker import Worker
from longrun.service import Service
from longrun.store.sqlite import SQLiteStore

Figures = dict[str, float]


def bench_huey(n: int, folder: Path, synchronous: str) -> Figures:
    """Huey's SqliteHuey; ``synchronous`` FULL is its default (it sets no pragma), NORMAL is set
    on each of its connections as longrun sets it."""
    from huey import SqliteHuey

    huey = SqliteHuey(filename=str(folder / f"huey-{synchronous}-{time.monotonic_ns()}.db"))
    if synchronous != "FULL":
        opener = huey.storage._create_connection

        def create_connection() -> sqlite3.Connection:
            conn = opener()
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            return conn

        huey.storage._create_connection = create_connection

    @huey.task()
    def noop() -> int:
        return 1

    t0 = time.perf_counter()
    for _ in range(n):
        noop()
    t1 = time.perf_counter()
    drained = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        drained += 1
    t2 = time.perf_counter()
    assert drained == n
    return {"enqueue/s": n / (t1 - t0), "drain/s": n / (t2 - t1), "lifecycle/s": n / (t2 - t0)}


async def bench_inprocess(
    n: int, folder: Path, concurrent_submits: bool, synchronous: str = "NORMAL"
) -> Figures:
    """Submit n (one by one, or 256 at a time), then start one worker and drain them."""
    name = f"inproc-{int(concurrent_submits)}-{synchronous}-{time.monotonic_ns()}.db"
    store = SQLiteStore(folder / name, synchronous=synchronous)
    await store.open()
    service = Service(store, app)
    worker = Worker(store, app, slots=64, poll_interval=0.05, flush_interval=0.2)
    t0 = time.perf_counter()
    if concurrent_submits:
        for start in range(0, n, 256):
            await asyncio.gather(
                *(service.submit("bench.noop", {}) for _ in range(min(256, n - start)))
            )
    else:
        for _ in range(n):
            await service.submit("bench.noop", {})
    t1 = time.perf_counter()
    await worker.start()
    deadline = time.monotonic() + 300
    while worker.counters.succeeded < n and time.monotonic() < deadline:
        await store.wait_for_change(0.5)
    t2 = time.perf_counter()
    await worker.stop()
    await store.close()
    assert worker.counters.succeeded == n, worker.counters.as_dict()
    return {"submit/s": n / (t1 - t0), "drain/s": n / (t2 - t1), "lifecycle/s": n / (t2 - t0)}


def _count_done(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute("SELECT count(*) FROM operations WHERE status = 'SUCCEEDED'").fetchone()[0]
        )


def _ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            r[0] for r in conn.execute("SELECT id FROM operations ORDER BY random() LIMIT 2000")
        ]


def bench_http_wrk(folder: Path, clients: int, seconds: float) -> dict[str, float]:
    """Submits and GETs driven by wrk against a real `longrun serve` (embedded worker)."""
    db = folder / f"http-wrk-{time.monotonic_ns()}.db"
    proc, url = start_server(
        f"sqlite:///{db}", extra_env={"LONGRUN_WORKER_SLOTS": "64", "LONGRUN_POLL_INTERVAL": "0.05"}
    )
    try:
        t0 = time.perf_counter()
        posts = wrk_post_json(
            f"{url}/v1/operations", '{"operationType":"bench.noop","input":{}}', clients, seconds
        )
        submitted = posts.requests - posts.non_2xx
        deadline = time.monotonic() + 300
        while _count_done(db) < submitted and time.monotonic() < deadline:
            time.sleep(0.05)
        t1 = time.perf_counter()
        gets = wrk_get_ids(url, "/v1/operations/", _ids(db), clients, seconds)
        return {
            "submit/s": posts.rate,
            "POST p50 ms": posts.p50_ms,
            "POST p99 ms": posts.p99_ms,
            "lifecycle/s": _count_done(db) / (t1 - t0),
            "GET/s": gets.rate,
            "GET p50 ms": gets.p50_ms,
            "GET p99 ms": gets.p99_ms,
            "errors": float(posts.non_2xx + gets.non_2xx),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def bench_http(n: int, folder: Path, clients: int) -> dict[str, float]:
    db = folder / f"http-{time.monotonic_ns()}.db"
    proc, url = start_server(
        f"sqlite:///{db}", extra_env={"LONGRUN_WORKER_SLOTS": "64", "LONGRUN_POLL_INTERVAL": "0.05"}
    )
    try:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            ids: list[str] = []
            queue = list(range(n))
            t0 = time.perf_counter()

            async def submitter() -> None:
                while queue:
                    queue.pop()
                    r = await http.post(
                        "/v1/operations", json={"operationType": "bench.noop", "input": {}}
                    )
                    r.raise_for_status()
                    ids.append(r.json()["id"])

            await asyncio.gather(*(submitter() for _ in range(clients)))
            t1 = time.perf_counter()
            deadline = time.monotonic() + 300
            while _count_done(db) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            t2 = time.perf_counter()
            latencies = await _get_latencies(http, ids, clients, per_client=200)
        return {
            "submit/s": n / (t1 - t0),
            "lifecycle/s": n / (t2 - t0),
            "GET p50 ms": percentile(latencies, 50) * 1000,
            "GET p99 ms": percentile(latencies, 99) * 1000,
            "GET req/s": len(latencies) / sum(latencies) * clients,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _get_latencies(
    http: httpx.AsyncClient, ids: list[str], clients: int, per_client: int
) -> list[float]:
    latencies: list[float] = []

    async def reader() -> None:
        for _ in range(per_client):
            t = time.perf_counter()
            r = await http.get(f"/v1/operations/{random.choice(ids)}")
            latencies.append(time.perf_counter() - t)
            r.raise_for_status()

    await asyncio.gather(*(reader() for _ in range(clients)))
    return latencies


def _median(runs: list[Figures]) -> Figures:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def _fmt(figures: Figures) -> str:
    return ", ".join(f"{k} {v:,.0f}" if v > 100 else f"{k} {v:.2f}" for k, v in figures.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians printed")
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    n = args.n
    names = ["huey FULL", "huey NORMAL", "seq NORMAL", "seq FULL", "conc NORMAL", "conc FULL",
             "http NORMAL"]  # fmt: skip
    runs: dict[str, list[Figures]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.repeat):  # interleaved, so that a noisy moment hits every system
            runs["huey FULL"].append(bench_huey(n, folder, "FULL"))
            runs["huey NORMAL"].append(bench_huey(n, folder, "NORMAL"))
            runs["seq NORMAL"].append(asyncio.run(bench_inprocess(n, folder, False)))
            runs["seq FULL"].append(asyncio.run(bench_inprocess(n, folder, False, "FULL")))
            runs["conc NORMAL"].append(asyncio.run(bench_inprocess(n, folder, True)))
            runs["conc FULL"].append(asyncio.run(bench_inprocess(n, folder, True, "FULL")))
            if args.no_http:
                continue
            if has_wrk():
                runs["http NORMAL"].append(bench_http_wrk(folder, args.clients, seconds=5.0))
            else:
                print("wrk not found (apt-get install wrk): HTTP measured with a Python client,")
                print("which shares the 2 cores with the server and understates it")
                runs["http NORMAL"].append(asyncio.run(bench_http(n, folder, args.clients)))
    med = {name: _median(r) for name, r in runs.items() if r}
    hf, hn = med["huey FULL"]["drain/s"], med["huey NORMAL"]["drain/s"]
    rows = [
        ("huey, synchronous=FULL (its default)", _fmt(med["huey FULL"])),
        ("huey, synchronous=NORMAL", _fmt(med["huey NORMAL"])),
        ("longrun NORMAL, sequential submits", _fmt(med["seq NORMAL"])),
        ("longrun FULL, sequential submits", _fmt(med["seq FULL"])),
        ("longrun NORMAL, 256 concurrent submits", _fmt(med["conc NORMAL"])),
        ("longrun FULL, 256 concurrent submits", _fmt(med["conc FULL"])),
    ]
    if "http NORMAL" in med:
        rows.append((f"longrun NORMAL over HTTP, {args.clients} conns", _fmt(med["http NORMAL"])))
    rows.append(("-- ratios to huey's drain/s at the same synchronous", ""))
    pairs = (("seq NORMAL", hn), ("seq FULL", hf), ("conc NORMAL", hn), ("conc FULL", hf),
             ("http NORMAL", hn))  # fmt: skip
    for name, base in pairs:
        if name in med:
            drain = f", drain {med[name]['drain/s'] / base:.2f}x" if "drain/s" in med[name] else ""
            rows.append(
                (f"longrun {name}", f"lifecycle {med[name]['lifecycle/s'] / base:.2f}x{drain}")
            )
    rows.append(("-- the same, longrun NORMAL / huey FULL (unlike durability)", ""))
    for name in ("seq NORMAL", "conc NORMAL", "http NORMAL"):
        if name in med:
            rows.append((f"longrun {name}", f"lifecycle {med[name]['lifecycle/s'] / hf:.2f}x"))
    title = (
        f"lifecycle, {n} no-op operations, SQLite WAL, one worker process, median of {args.repeat}"
    )
    print_table(title, rows)


if __name__ == "__main__":
    main()
