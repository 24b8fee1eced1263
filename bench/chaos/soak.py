"""Soak sampling: throughput, RSS and open fds of each process, and the database size, over time."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from bench.chaos.invariants import TERMINAL
from bench.chaos.procs import Cluster
from longrun.model import utcnow
from longrun.store import open_store, sqlite_path

__all__ = ["Sampler", "fd_kinds", "slope"]

PROCESS_WARMUP = 1.0  # minutes of a process's own start-up left out of its slopes
PROCESS_SPAN = 3.0  # minutes a process's warm samples must span to get a slope


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


def fd_kinds(pid: int) -> Counter[str]:
    """What a process's open fds are: socket, pipe, anon_inode:[eventfd], or a file's name."""
    kinds: Counter[str] = Counter()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return kinds
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith(("socket:", "pipe:")):
            target = target.split(":")[0]
        elif target.startswith("/"):
            target = os.path.basename(target) if "/runs" not in target else "runs/*.jsonl"
        kinds[target] += 1
    return kinds


class Sampler:
    """Every ``interval`` seconds, in a thread of its own with its own store connection."""

    def __init__(self, cluster: Cluster, db: str, interval: float) -> None:
        self.cluster = cluster
        self.db = db
        self.interval = interval
        self.t0 = time.monotonic()
        self.throughput: list[tuple[float, float]] = []  # (minute, finished per second)
        self.db_mb: list[tuple[float, float]] = []  # the whole database: with SQLite, + WAL
        self.wal_mb: list[tuple[float, float]] = []  # SQLite: the -wal file alone
        self.timeline: list[dict[str, Any]] = []  # about one row a minute
        self.kinds: dict[str, list[tuple[float, Counter[str]]]] = defaultdict(list)
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
                size = await self._db_size(minute)
                if size is not None:
                    self.db_mb.append((minute, size / 2**20))
                self._timeline(minute)
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
                if node in self.cluster.lasting:
                    self.kinds[key].append((minute, fd_kinds(node.popen.pid)))

    def _timeline(self, minute: float) -> None:
        if self.timeline and minute - self.timeline[-1]["min"] < 0.95:
            return
        row: dict[str, Any] = {
            "min": round(minute, 1),
            "ops_per_s": _round(self.throughput[-1][1]),
            "db_mb": _round(self.db_mb[-1][1]) if self.db_mb else None,
        }
        if self.wal_mb:
            row["wal_mb"] = _round(self.wal_mb[-1][1])
        for series, label in ((self.rss, "rss_mb"), (self.fds, "fds")):
            row[label] = {
                k: _round(v[-1][1]) for k, v in series.items() if v and v[-1][0] == minute
            }
        self.timeline.append(row)

    async def _db_size(self, minute: float) -> int | None:
        if self.db.startswith("sqlite"):
            path = sqlite_path(self.db)
            files = {p.name: p.stat().st_size for p in path.parent.glob(path.name + "*")}
            wal = files.get(path.name + "-wal", 0)
            self.wal_mb.append((minute, wal / 2**20))
            return sum(files.values())  # the main file, -wal and -shm
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

        rates = [r for _, r in self.throughput]
        return {
            "samples": len(self.throughput),
            "warm_from_min": round(since, 1),
            "throughput_ops_per_s": {
                "first_half": _mean(rates[: len(rates) // 2]),
                "second_half": _mean(rates[len(rates) // 2 :]),
                "slope_per_min": round(slope(warm), 3),
            },
            "db_mb": {
                "first": _round(self.db_mb[0][1]) if self.db_mb else None,
                "last": _round(self.db_mb[-1][1]) if self.db_mb else None,
                "max": _round(max((v for _, v in self.db_mb), default=0.0)),
                "max_warm": _round(max((v for _, v in warm_of(self.db_mb)), default=0.0)),
                "slope_mb_per_min_warm": round(slope(warm_of(self.db_mb)), 4),
                **self._wal(warm_of),
            },
            "processes_warm": self._processes(since),
            "fd_kinds_warm_change": self._kind_changes(since),
            "timeline": self.timeline,
        }

    def _processes(self, since: float) -> dict[str, dict[str, Any]]:
        """Per process that lived through enough of the warm part: RSS and fds at the start and
        the end of its warm samples, and their slopes per minute."""
        found: dict[str, dict[str, Any]] = {}
        for key, rss in self.rss.items():
            warm_rss, warm_fds = _settled(rss, since), _settled(self.fds[key], since)
            if not warm_rss or not warm_fds:
                continue
            found[key] = {
                "minutes": [round(warm_rss[0][0], 1), round(warm_rss[-1][0], 1)],
                "rss_mb": [_round(warm_rss[0][1]), _round(warm_rss[-1][1])],
                "rss_mb_slope_per_min": round(slope(warm_rss), 3),
                "fds": [int(warm_fds[0][1]), int(warm_fds[-1][1])],
                "fds_slope_per_min": round(slope(warm_fds), 3),
            }
        return found

    def _wal(self, warm_of: Any) -> dict[str, Any]:
        if not self.wal_mb:
            return {}
        return {
            "wal_max": _round(max(v for _, v in self.wal_mb)),
            "wal_slope_mb_per_min_warm": round(slope(warm_of(self.wal_mb)), 4),
        }

    def _kind_changes(self, since: float) -> dict[str, dict[str, Any]]:
        """Per long-lived server or worker: its fds by kind at the start of the warm part and at
        the end, and which kinds changed."""
        found: dict[str, dict[str, Any]] = {}
        for key, points in self.kinds.items():
            times = _settled([(m, 0.0) for m, _ in points], since)
            warm = [p for p in points if times and times[0][0] <= p[0]]
            if not warm:
                continue
            first, last = warm[0][1], warm[-1][1]
            changed = {k: last[k] - first[k] for k in first | last if last[k] != first[k]}
            found[key] = {"minutes": round(warm[-1][0] - warm[0][0], 1), "changed": changed}
            found[key]["last"] = dict(last.most_common())
        return found


def _settled(points: list[tuple[float, float]], since: float) -> list[tuple[float, float]]:
    """A process's samples from the warm part of the run and after its own first minute, if they
    span at least ``PROCESS_SPAN`` minutes (a slope over less says nothing); else none."""
    if not points:
        return []
    born = points[0][0]
    kept = [p for p in points if p[0] >= since and p[0] >= born + PROCESS_WARMUP]
    return kept if kept and kept[-1][0] - kept[0][0] >= PROCESS_SPAN else []


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


def _round(value: float) -> float:
    return round(value, 2)
