"""The audit trail is bounded too: records older than the audit horizon expire, oldest first, on
every engine, and the worker's housekeeping does it (found by the chaos soak: one row per mutation
grew the store by ~0.06 MB a minute once operations and tombstones were bounded)."""

from __future__ import annotations

import time
from datetime import timedelta

from longrun.engine.housekeeping import Housekeeper
from longrun.model import SystemClock, new_id, utcnow
from longrun.model.ids import id_floor
from longrun.store import Store
from longrun.store.access import AuditRecord


def _record(action: str) -> AuditRecord:
    return AuditRecord(new_id(), utcnow(), "chaos", action, "ok", 202, None, "c1")


def _next_millisecond() -> None:
    """Until the wall clock is in a later millisecond than now (a condition, not a nap)."""
    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 <= start:
        pass


def test_id_floor_splits_ids_by_their_millisecond() -> None:
    before = [new_id() for _ in range(50)]
    _next_millisecond()
    cut = utcnow()
    _next_millisecond()
    after = [new_id() for _ in range(50)]
    floor = id_floor(cut)
    assert all(i < floor for i in before)
    assert all(i > floor for i in after)
    assert id_floor(cut - timedelta(days=1)) < min(before)


async def test_audit_records_expire_oldest_first(store: Store) -> None:
    old = [_record(f"old-{i}") for i in range(5)]
    for record in old:
        await store.record_audit(record)
    _next_millisecond()
    cut = utcnow()
    _next_millisecond()
    new = [_record(f"new-{i}") for i in range(3)]
    for record in new:
        await store.record_audit(record)
    assert await store.expire_audit(cut, limit=2) == 2  # a bounded batch: the two oldest
    left = [r.action for r in await store.list_audit(limit=100)]
    assert left == ["new-2", "new-1", "new-0", "old-4", "old-3", "old-2"]
    assert await store.expire_audit(cut) == 3
    assert await store.expire_audit(cut) == 0
    assert [r.action for r in await store.list_audit(limit=100)] == ["new-2", "new-1", "new-0"]


async def test_housekeeping_expires_the_audit_trail(store: Store) -> None:
    for i in range(4):
        await store.record_audit(_record(f"a-{i}"))
    _next_millisecond()
    keeper = Housekeeper(
        store, SystemClock(), interval=1.0, retention_seconds=3600.0, audit_retention_seconds=0.0
    )
    await keeper.purge_once()
    assert await store.list_audit(limit=100) == []
    unbounded = Housekeeper(store, SystemClock(), interval=1.0, retention_seconds=3600.0)
    await store.record_audit(_record("kept"))
    _next_millisecond()
    await unbounded.purge_once()  # no audit horizon: the trail is kept
    assert [r.action for r in await store.list_audit(limit=100)] == ["kept"]
