"""Soak sampling: throughput, RSS and open fds of each process, and the database size, over time."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from bench.chaos.invariants import TERMINAL
from bench.chaos.procs import Cluster
from longrun.model import utcnow
from longrun.store import open_store, sqlite_path

__all__ = ["Sampler", "slope"]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; 0 with fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var


def _proc(pid: int) -> tuple[float, int] | None:
    """(RSS in MB, open fds) of a live process."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            rss = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
        return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration, ValueError):
        return None


class Sampler:
    """Every ``interval`` seconds, in a thread of its own with its own store connection."""

    def __init__(self, cluster: Cluster, db: str, interval: float) -> None:
        self.cluster = cluster
        self.db = db
        self.interval = interval
        self.t0 = time.monotonic()
        self.throughput: list[tuple[float, float]] = []  # (minute, finished per second)
        self.db_mb: list[tuple[float, float]] = []
        self.rss: dict[str, list[tuple[float, float]]] = defaultdict(list)  # "name/pid"
        self.fds: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-soak", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.interval + 30)

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        store = open_store(self.db)
        await store.open()
        try:
            since = utcnow()
            while not self._stop.wait(self.interval):
                now = utcnow()
                try:
                    moved = await store.changed_since(since - timedelta(seconds=1), limit=100_000)
                except Exception:
                    continue
                done = sum(
                    1
                    for op in moved
                    if op.status in TERMINAL
                    and op.time_finished
                    and since <= op.time_finished < now
                )
                minute = (time.monotonic() - self.t0) / 60
                self.throughput.append((minute, done / max(0.001, (now - since).total_seconds())))
                since = now
                self._sample_processes(minute)
                size = await self._db_size(store)
                if size is not None:
                    self.db_mb.append((minute, size / 2**20))
        finally:
            await store.close()

    def _sample_processes(self, minute: float) -> None:
        for node in self.cluster.nodes:
            if not node.alive or node.stopped or node.popen is None:
                continue
            got = _proc(node.popen.pid)
            if got is not None:
                key = f"{node.name}/{node.popen.pid}"
                self.rss[key].append((minute, got[0]))
                self.fds[key].append((minute, got[1]))

    async def _db_size(self, store: Any) -> int | None:
        if self.db.startswith("sqlite"):
            path = sqlite_path(self.db)
            return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        try:
            import psycopg

            with psycopg.connect(self.db, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                return int(row[0]) if row else None
        except Exception:
            return None

    def figures(self) -> dict[str, Any]:
        """Slopes over the warm half (per minute), and the ranges they came from."""
        warm = self.throughput[len(self.throughput) // 2 :]
        since = warm[0][0] if warm else 0.0

        def warm_of(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
            return [p for p in points if p[0] >= since]

        def per_process(series: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
            return {
                k: round(slope(warm_of(v)), 3) for k, v in series.items() if len(warm_of(v)) >= 4
            }

        rates = [r for _, r in self.throughput]
        return {
            "samples": len(self.throughput),
            "throughput_ops_per_s": {
                "first_half": _mean(rates[: len(rates) // 2]),
                "second_half": _mean(rates[len(rates) // 2 :]),
                "slope_per_min": round(slope(warm), 3),
            },
            "db_mb": {
                "first": _round(self.db_mb[0][1]) if self.db_mb else None,
                "last": _round(self.db_mb[-1][1]) if self.db_mb else None,
                "max": _round(max((v for _, v in self.db_mb), default=0.0)),
                "slope_mb_per_min_warm": round(slope(warm_of(self.db_mb)), 4),
            },
            "rss_mb_slope_per_min_warm": per_process(self.rss),
            "rss_mb_last": {k: _round(v[-1][1]) for k, v in self.rss.items() if len(v) >= 4},
            "fds_slope_per_min_warm": per_process(self.fds),
        }


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def _round(value: float) -> float:
    return round(value, 2)
