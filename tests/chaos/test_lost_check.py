"""The soak's "lost" check with tombstone expiry: an id seen settled whose tombstone expired after its
horizon is "expired after purge"; an id never seen settled, or gone before its horizon, is lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bench.chaos.confirm import Confirmer, vanish_horizon
from bench.chaos.invariants import check, read_lines
from longrun.model import Operation, Status, new_id, utcnow
from longrun.store import Store, open_store
from longrun.store.base import NewOperation


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/longrun.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def _accepted(store: Store, home: Path, key: str) -> str:
    """Submit one operation and record, as a chaos client does, that a 2xx came back for it."""
    now = utcnow()
    op = Operation(
        id=new_id(),
        operation_type="chaos.ok",
        compartment_id="c1",
        status=Status.ACCEPTED,
        time_accepted=now,
        last_action_time=now,
        idempotency_key=key,
    )
    stored = (await store.submit(NewOperation(op))).operation
    with (home / "client-0.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"ev": "accepted", "key": key, "op": stored.id}) + "\n")
    return stored.id


async def _purge_all(store: Store) -> None:
    """Purge every terminal operation, then expire every tombstone: the ids answer 404."""
    later = utcnow() + timedelta(hours=1)
    assert await store.purge(later, utcnow()) >= 1
    assert await store.expire_tombstones(later) >= 1


async def test_expired_is_told_apart_from_lost(store: Store, tmp_path: Path) -> None:
    confirmer = Confirmer(tmp_path, "unused", interval=1.0)
    seen_done = await _accepted(store, tmp_path, "k-done")  # canceled: terminal
    seen_purged = await _accepted(store, tmp_path, "k-purged")  # seen only as a tombstone
    running = await _accepted(store, tmp_path, "k-running")  # never settles
    seen_early = await _accepted(store, tmp_path, "k-early")  # gone before its horizon
    await store.request_cancel(seen_done, utcnow())
    await store.request_cancel(seen_early, utcnow())
    await confirmer.confirm_pass(store)
    assert set(confirmer.confirmed) == {seen_done, seen_early}
    assert confirmer.confirmed[seen_done].how == "terminal"
    await store.request_cancel(seen_purged, utcnow())
    await store.purge(utcnow() + timedelta(seconds=1), utcnow())
    await confirmer.confirm_pass(store)
    assert confirmer.confirmed[seen_purged].how == "tombstone"
    assert confirmer.pending == {running}

    never_seen = await _accepted(store, tmp_path, "k-never")  # settles and vanishes unseen
    await store.request_cancel(never_seen, utcnow())
    await _purge_all(store)
    for op_id in (seen_done, seen_purged, seen_early, never_seen):
        assert await store.get(op_id) is None and await store.get_tombstone(op_id) is None

    expiry = {op_id: vanish_horizon(seen, 0.0, 0.0) for op_id, seen in confirmer.confirmed.items()}
    expiry[seen_early] = vanish_horizon(confirmer.confirmed[seen_early], 60.0, 300.0)
    report = await check(store, read_lines(tmp_path, "client-*.jsonl"), [], expiry)
    assert report.figures["expired_after_purge"] == 2  # seen_done and seen_purged
    lost = report.violations["lost"]
    assert report.figures["lost"] == 2 and len(lost) == 2
    assert any(never_seen in line and "never seen settled" in line for line in lost)
    assert any(seen_early in line and "too early" in line for line in lost)
    assert report.figures["final_status"] == {"ACCEPTED": 1}


async def test_without_expiry_every_missing_id_is_lost(store: Store, tmp_path: Path) -> None:
    """The short form passes no expiry: as before, only a live operation or a tombstone counts."""
    gone = await _accepted(store, tmp_path, "k-gone")
    purged = await _accepted(store, tmp_path, "k-purged")
    await store.request_cancel(gone, utcnow())
    await _purge_all(store)
    await store.request_cancel(purged, utcnow())
    await store.purge(utcnow() + timedelta(seconds=1), utcnow())
    report = await check(store, read_lines(tmp_path, "client-*.jsonl"), [])
    assert "expired_after_purge" not in report.figures
    assert report.figures["purged_tombstones"] == 1
    assert report.figures["lost"] == 1 and gone in report.violations["lost"][0]
