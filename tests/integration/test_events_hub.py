"""The change feed of the store and the hub's fan-out, on a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from longrun.api.events import Change, ChangeHub, Subscription
from longrun.model import ManualClock, Operation, RateLimited, Status, new_id
from longrun.store import Store, open_store
from longrun.store.base import NewOperation, Update


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/feed.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def _submit(store: Store, clock: ManualClock, **fields: Any) -> Operation:
    now = clock.now()
    op = Operation(
        id=new_id(),
        operation_type=fields.pop("operation_type", "test.op"),
        compartment_id="c1",
        status=Status.ACCEPTED,
        time_accepted=now,
        last_action_time=now,
        **fields,
    )
    return (await store.submit(NewOperation(op))).operation


async def test_changed_since_is_in_the_order_operations_moved(
    store: Store, clock: ManualClock
) -> None:
    start = clock.now()
    first = await _submit(store, clock)
    clock.advance(1)
    second = await _submit(store, clock)
    clock.advance(1)
    [claim] = await store.claim("w", ["test.op"], clock.now(), 30, 1)  # first, oldest
    clock.advance(1)
    await store.heartbeat(first.id, claim.lease_id, clock.now(), 30, Update(percent_complete=5))
    changed = await store.changed_since(start)
    assert [op.id for op in changed] == [second.id, first.id]
    assert changed[-1].percent_complete == 5
    assert [op.id for op in await store.changed_since(clock.now())] == [first.id]
    assert await store.changed_since(clock.now() + timedelta(microseconds=1)) == []
    assert len(await store.changed_since(start, limit=1)) == 1
    # the fallback every engine inherits agrees with the indexed query
    assert await Store.changed_since(store, start) == changed


def _change(op_id: str, version: int, clock: ManualClock) -> Change:
    now = clock.now()
    op = Operation(
        id=op_id,
        operation_type="t",
        compartment_id="c",
        status=Status.IN_PROGRESS,
        time_accepted=now,
        last_action_time=now,
        version=version,
    )
    return Change(op, op.to_json(), 0)


def test_a_subscription_keeps_only_the_newest_version_of_each_operation(
    clock: ManualClock,
) -> None:
    sub = Subscription("me", max_pending=2)
    sub.offer(_change("a", 2, clock))
    sub.offer(_change("a", 3, clock))
    sub.offer(_change("a", 1, clock))  # late and stale
    sub.offer(_change("b", 1, clock))
    assert [(c.operation.id, c.operation.version) for c in sub.take()] == [("a", 3), ("b", 1)]
    sub.offer(_change("a", 3, clock))  # already sent
    assert sub.take() == []
    for name in "xyz":
        sub.offer(_change(name, 1, clock))
    assert sub.lagging and sub.closed, "more distinct pending operations than allowed"


async def test_hub_fans_out_committed_changes_and_bounds_clients(
    store: Store, clock: ManualClock
) -> None:
    hub = ChangeHub(store, now=clock.now, max_streams_per_client=2)
    try:
        mine = hub.subscribe("a", match=lambda op: op.operation_type == "mine")
        other = hub.subscribe("a", match=lambda op: op.operation_type != "mine")
        with pytest.raises(RateLimited):
            hub.subscribe("a")
        hub.subscribe("b").close()
        op = await _submit(store, clock, operation_type="mine")
        await _until(lambda: bool(mine.pending))
        [change] = mine.take()
        assert change.operation.id == op.id
        assert change.cursor >= 0 and not other.pending
        hub.unsubscribe(other)
        assert hub.subscribe("a") is not None  # a slot came back
    finally:
        await hub.stop()
    assert mine.closed


async def _until(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.01)
