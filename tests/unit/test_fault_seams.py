"""The opt-in fault seams: a skewed worker clock and a store that answers slowly."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from longrun.bootstrap import SKEW_ENV, worker_clock
from longrun.model import Operation, Status, new_id, utcnow
from longrun.model.clock import SkewedClock, SystemClock
from longrun.store import open_store
from longrun.store.base import NewOperation, Store
from longrun.store.delayed import DELAY_ENV, DelayedStore, delayed_methods
from longrun.store.sqlite import SQLiteStore


def test_a_skewed_clock_runs_ahead_or_behind_the_wall_clock() -> None:
    ahead, behind = SkewedClock(60).now() - utcnow(), utcnow() - SkewedClock(-60).now()
    assert timedelta(seconds=59) < ahead < timedelta(seconds=61)
    assert timedelta(seconds=59) < behind < timedelta(seconds=61)


def test_the_worker_clock_is_skewed_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKEW_ENV, raising=False)
    assert isinstance(worker_clock(), SystemClock)
    monkeypatch.setenv(SKEW_ENV, "-5")
    clock = worker_clock()
    assert isinstance(clock, SkewedClock) and clock.offset == timedelta(seconds=-5)


def test_open_store_wraps_only_when_a_delay_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    monkeypatch.delenv(DELAY_ENV, raising=False)
    assert isinstance(open_store(url), SQLiteStore)
    monkeypatch.setenv(DELAY_ENV, "0")
    assert isinstance(open_store(url), SQLiteStore)
    monkeypatch.setenv(DELAY_ENV, "40")
    store = open_store(url)
    assert isinstance(store, DelayedStore) and store.delay == pytest.approx(0.04)
    assert isinstance(store.inner, SQLiteStore)


def test_every_domain_method_is_delayed_but_waiting_for_a_change_is_not() -> None:
    names = delayed_methods()
    assert {"submit", "claim", "heartbeat", "finish", "reap", "get", "list"} <= set(names)
    assert "wait_for_change" not in names
    assert not DelayedStore.__abstractmethods__
    assert all(getattr(DelayedStore, name) is not getattr(Store, name) for name in names)


async def test_a_delayed_store_answers_the_same_only_later(tmp_path: Path) -> None:
    store = DelayedStore(SQLiteStore(tmp_path / "d.db"), 0.05)
    await store.open()
    try:
        now = utcnow()
        op = Operation(
            id=new_id(),
            operation_type="t",
            compartment_id="c",
            status=Status.ACCEPTED,
            time_accepted=now,
            last_action_time=now,
        )
        started = time.monotonic()
        result = await store.submit(NewOperation(op))
        got = await store.get(op.id)
        assert time.monotonic() - started >= 0.1
        assert result.created and got is not None and got.id == op.id
        assert await store.wait_for_change(0.01) in (True, False)
    finally:
        await store.close()


def test_a_worker_built_for_a_process_takes_the_skew_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longrun.bootstrap import build_worker
    from longrun.config import Settings
    from longrun.engine.registry import App

    monkeypatch.setenv(SKEW_ENV, "7")
    store = SQLiteStore(tmp_path / "w.db")
    worker = build_worker(store, App(), None, Settings(db=f"sqlite:///{tmp_path}/w.db"))
    assert isinstance(worker.clock, SkewedClock) and worker.clock.offset == timedelta(seconds=7)
    given = SystemClock()
    assert build_worker(store, App(), given, Settings()).clock is given
