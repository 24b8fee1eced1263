"""Store contract: the change feed, whole (changed_since) and without known versions (changes_since)."""

from __future__ import annotations

from longrun.model import ManualClock
from longrun.store import Store
from longrun.store.base import Update
from tests.store.conftest import later, make_op


async def _moved_ops(store: Store, clock: ManualClock, count: int) -> list[str]:
    """``count`` operations, each submitted one second after the previous one."""
    ids = []
    for _ in range(count):
        new = make_op(clock)
        await store.submit(new)
        ids.append(new.operation.id)
        clock.advance(1)
    return ids


async def test_the_feed_is_in_the_order_operations_moved(store: Store, clock: ManualClock) -> None:
    start = clock.now()
    ids = await _moved_ops(store, clock, 3)
    assert [op.id for op in await store.changed_since(start)] == ids
    assert [op.id for op in await store.changed_since(later(clock, -2))] == ids[1:]
    assert [op.id for op in await store.changed_since(start, limit=2)] == ids[:2]


async def test_known_versions_are_left_out_but_counted(store: Store, clock: ManualClock) -> None:
    start = clock.now()
    ids = await _moved_ops(store, clock, 4)
    ops = {op.id: op for op in await store.changed_since(start)}
    # the reader knows the first two at their version, and the third at an older one
    known = {ids[0]: ops[ids[0]].version, ids[1]: ops[ids[1]].version + 5, ids[2]: -1}
    page = await store.changes_since(start, 3, known)
    assert [op.id for op in page.operations] == [ids[2]]
    assert page.rows == 3 and page.last_action_time == ops[ids[2]].last_action_time
    # paging on from the last row read reaches the rest
    rest = await store.changes_since(page.last_action_time, 3, known)
    assert [op.id for op in rest.operations] == [ids[2], ids[3]]
    assert rest.rows == 2


async def test_a_new_version_comes_back(store: Store, clock: ManualClock) -> None:
    start = clock.now()
    [op_id] = await _moved_ops(store, clock, 1)
    [claim] = await store.claim("w", ["test.op"], clock.now(), 30, 1)
    known = {op_id: claim.operation.version}
    assert (await store.changes_since(start, 10, known)).operations == []
    await store.heartbeat(op_id, claim.lease_id, later(clock, 1), 30, Update(percent_complete=5))
    [moved] = (await store.changes_since(start, 10, known)).operations
    assert moved.id == op_id and moved.percent_complete == 5
    assert moved.version > claim.operation.version
    empty = await store.changes_since(later(clock, 60), 10, {})
    assert empty.operations == [] and empty.rows == 0 and empty.last_action_time is None
