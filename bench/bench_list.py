"""List and filter latency on a SQLite store holding a million operations, next to a GET by id.

Run: .venv/bin/python bench/bench_list.py [--rows 1000000]. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, print_table

from longrun.model import Operation, Status, new_id, utcnow
from longrun.store import open_store
from longrun.store.base import ListQuery, NewOperation

STATUSES = [Status.SUCCEEDED] * 90 + [Status.FAILED] * 5 + [Status.ACCEPTED] * 5


async def fill(store: object, rows: int) -> float:
    start = utcnow() - timedelta(days=30)
    t0 = time.perf_counter()
    for base in range(0, rows, 1000):
        batch = []
        for i in range(base, min(rows, base + 1000)):
            at = start + timedelta(seconds=i * 2)
            batch.append(NewOperation(Operation(
                id=new_id(), operation_type=f"type.{i % 7}", compartment_id=f"tenant-{i % 50}",
                status=random.choice(STATUSES), time_accepted=at, last_action_time=at,
            )))
        await asyncio.gather(*(store.submit(n) for n in batch))  # type: ignore[attr-defined]
    return rows / (time.perf_counter() - t0)


async def timed(fn: object, repeat: int = 200) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t) * 1000)
    return percentile(samples, 50), percentile(samples, 99)


async def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/list.db")
        await store.open()
        rate = await fill(store, rows)
        some = await store.list(ListQuery(limit=1000))
        ids = [o.id for o in some]
        mid = some[len(some) // 2].time_accepted
        cases = {
            "GET by id (baseline)": lambda: store.get(random.choice(ids)),
            "list newest 100": lambda: store.list(ListQuery(limit=100)),
            "list compartment": lambda: store.list(ListQuery(compartment_ids=["tenant-7"], limit=100)),
            "compartment + FAILED": lambda: store.list(ListQuery(compartment_ids=["tenant-7"], statuses=[Status.FAILED], limit=100)),
            "compartment + type": lambda: store.list(ListQuery(compartment_ids=["tenant-7"], operation_types=["type.3"], limit=100)),
            "ACCEPTED (all tenants)": lambda: store.list(ListQuery(statuses=[Status.ACCEPTED], limit=100)),
            "compartment + time range": lambda: store.list(ListQuery(compartment_ids=["tenant-7"], accepted_before=mid, limit=100)),
            "deep cursor page": lambda: store.list(ListQuery(after_id=ids[-1], limit=100)),
        }
        results = {name: await timed(fn) for name, fn in cases.items()}
        await store.close()
    base = results["GET by id (baseline)"][0]
    print_table(f"{rows:,} operations in one SQLite file (filled at {rate:,.0f} rows/s)", [
        (name, f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, p50 = {p50 / base:.1f}x GET")
        for name, (p50, p99) in results.items()
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().rows))
