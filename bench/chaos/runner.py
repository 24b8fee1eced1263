"""One chaos run: start the cluster, drive load and faults, settle, check the invariants."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.chaos.confirm import Confirmer, vanish_horizon
from bench.chaos.faults import KINDS, Injector
from bench.chaos.invariants import Report, check, read_lines
from bench.chaos.load import client_main
from bench.chaos.procs import Cluster
from bench.chaos.soak import Sampler
from longrun.model import Status
from longrun.store import open_store
from longrun.store.base import ListQuery

__all__ = ["Options", "Result", "run", "scratch_database"]

_UNSETTLED = [Status.ACCEPTED, Status.IN_PROGRESS, Status.CANCELING]
SOAK_RETENTION = 60.0
SOAK_TOMBSTONES = 300.0
SKEW_SLACK = timedelta(seconds=30)  # skewed worker clocks purge and expire a little early


@dataclass
class Options:
    engine: str = "sqlite"
    duration: float = 60.0  # seconds of load and faults
    soak: bool = False
    servers: int = 2
    workers: int = 3
    clients: int = 4
    rate: float = 1.0  # submits a second per client
    pace: tuple[float, float] = (1.0, 2.5)  # seconds between faults
    settle: float = 90.0  # bound on reaching terminal states once faults stop
    sample_interval: float = 10.0
    seed: int | None = None
    home: Path | None = None
    retention_seconds: float | None = None  # on by default in a soak
    tombstone_retention_seconds: float | None = None  # likewise: the DB size must plateau


@dataclass
class Result:
    report: Report
    faults: dict[str, int]
    fault_errors: list[str]
    settle_seconds: float
    soak: dict[str, Any] = field(default_factory=dict)
    home: Path | None = None

    @property
    def violations(self) -> int:
        return self.report.total

    def summary(self) -> dict[str, Any]:
        return {
            "figures": self.report.figures,
            "faults": self.faults,
            "fault_errors": self.fault_errors,
            "settle_seconds": round(self.settle_seconds, 1),
            "violations": {k: len(v) for k, v in self.report.violations.items()},
            "violation_examples": {k: v[:5] for k, v in self.report.violations.items()},
            **({"soak": self.soak} if self.soak else {}),
        }


@contextlib.contextmanager
def scratch_database(engine: str, home: Path) -> Iterator[str]:
    """A store URL of its own: a file in ``home``, or a new database on the PostgreSQL server of
    LONGRUN_TEST_POSTGRES, dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{home}/longrun.db"
        return
    import psycopg

    server = os.environ.get("LONGRUN_TEST_POSTGRES")
    if not server:
        raise SystemExit(
            "--engine postgres needs LONGRUN_TEST_POSTGRES (run under scripts/with-postgres)"
        )
    name = f"chaos_{secrets.token_hex(5)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with contextlib.suppress(Exception), psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _retention(options: Options) -> tuple[float | None, float | None]:
    """(retention, tombstone retention) in seconds: short ones in a soak, the defaults otherwise."""
    retention = options.retention_seconds or (SOAK_RETENTION if options.soak else None)
    tombs = options.tombstone_retention_seconds or (SOAK_TOMBSTONES if options.soak else None)
    return retention, tombs


def _retention_env(options: Options) -> dict[str, str]:
    retention, tombs = _retention(options)
    env = {"LONGRUN_RETENTION_SECONDS": str(retention)} if retention else {}
    if tombs:  # the audit trail (a row per mutation) gets the same horizon as tombstones
        env["LONGRUN_TOMBSTONE_RETENTION_SECONDS"] = str(tombs)
        env["LONGRUN_AUDIT_RETENTION_SECONDS"] = str(tombs)
    return env


def run(options: Options) -> Result:
    """The whole run; the cluster is always stopped, whatever happens."""
    home = options.home or Path(tempfile.mkdtemp(prefix="longrun-chaos-"))
    home.mkdir(parents=True, exist_ok=True)
    with scratch_database(options.engine, home) as db:
        env = _retention_env(options)
        cluster = Cluster(
            home,
            db,
            servers=options.servers,
            workers=options.workers,
            extra_env=env,
            witnesses=options.soak,
        )
        try:
            return _run(options, cluster, db, home)
        finally:
            cluster.stop()


def _run(options: Options, cluster: Cluster, db: str, home: Path) -> Result:
    cluster.start()
    kinds = [k for k in KINDS if options.engine == "postgres" or k != "postgres_restart"]
    injector = Injector(cluster, kinds=kinds, pace=options.pace, seed=options.seed)
    sampler = Sampler(cluster, db, options.sample_interval) if options.soak else None
    tombs = _retention(options)[1]
    confirmer = Confirmer(home, db, options.sample_interval) if tombs else None
    until = time.time() + options.duration
    ctx = multiprocessing.get_context("spawn")
    clients = [
        ctx.Process(
            target=client_main,
            args=(
                i,
                cluster.urls,
                str(home / f"client-{i}.jsonl"),
                options.rate,
                until,
                (options.seed or 0) * 100 + i,
            ),
            name=f"chaos-client-{i}",
        )
        for i in range(options.clients)
    ]
    try:
        for proc in clients:
            proc.start()
        injector.start()
        if sampler is not None:
            sampler.start()
        if confirmer is not None:
            confirmer.start()
        for proc in clients:  # each stops at ``until``, then finishes a few releases
            proc.join(max(1.0, until - time.time()) + 120)
    finally:  # also on Ctrl-C: no client left running, no supervisor restarting what stop() ends
        for proc in clients:
            if proc.is_alive():
                proc.kill()
        injector.stop()
    soak: dict[str, Any] = {}
    if sampler is not None:  # the figures are of the load, not of the quiet settle after it
        sampler.stop()
        soak = sampler.figures()
    started = time.monotonic()
    report = asyncio.run(_settle_and_check(db, home, options, confirmer))
    settle_seconds = time.monotonic() - started
    faults = dict(injector.counts)
    faults["handler_exit"] = report.figures.get("handler_exits", 0)
    faults["process_restarts"] = cluster.restarts
    runs = read_lines(home / "runs", "*.jsonl")
    faults["handler_raise"] = sum(
        1 for r in runs if r["ev"] == "end" and r["how"] in ("ValueError", "RetryableError")
    )
    faults["handler_hang"] = sum(1 for r in runs if r["ev"] == "start" and r["kind"] == "hang")
    return Result(report, faults, injector.errors, settle_seconds, soak, home)


def _expiry(options: Options, confirmer: Confirmer | None) -> dict[str, datetime] | None:
    retention, tombs = _retention(options)
    if confirmer is None or tombs is None:
        return None
    confirmer.stop()
    return {
        op_id: vanish_horizon(seen, retention or 0.0, tombs) - SKEW_SLACK
        for op_id, seen in confirmer.confirmed.items()
    }


async def _settle_and_check(
    db: str, home: Path, options: Options, confirmer: Confirmer | None
) -> Report:
    store = open_store(db)
    await store.open()
    try:
        deadline = time.monotonic() + options.settle
        while time.monotonic() < deadline:
            left = await store.list(ListQuery(statuses=_UNSETTLED, limit=1))
            if not left:
                break
            await asyncio.sleep(0.5)
        expiry = await asyncio.to_thread(_expiry, options, confirmer)
        clients = read_lines(home, "client-*.jsonl")
        runs = read_lines(home / "runs", "*.jsonl")
        report = await check(store, clients, runs, expiry)
        if confirmer is not None:
            report.figures.update(
                confirmed_settled=len(confirmer.confirmed),
                confirm_passes=confirmer.passes,
                confirm_pass_errors=confirmer.errors,
            )
        return report
    finally:
        await store.close()
