"""Store contract: purge_compartment turns one compartment's terminal operations into tombstones."""

from __future__ import annotations

from longrun.model import ManualClock, Status
from longrun.store import Store
from longrun.store.base import PURGED_WITH_COMPARTMENT, Outcome
from tests.store.conftest import make_op


async def _canceled(store: Store, clock: ManualClock, compartment: str) -> str:
    op = (await store.submit(make_op(clock, compartment_id=compartment))).operation
    await store.request_cancel(op.id, clock.now())
    return op.id


async def test_purge_compartment_takes_its_terminal_operations_in_batches(
    store: Store, clock: ManualClock
) -> None:
    ended = [await _canceled(store, clock, "c1") for _ in range(5)]
    succeeded = (await store.submit(make_op(clock, compartment_id="c1"))).operation
    claim = (await store.claim("w", ["test.op"], clock.now(), 30, 1))[0]
    await store.finish(succeeded.id, claim.lease_id, clock.now(), Outcome(status=Status.SUCCEEDED))
    ended.append(succeeded.id)
    waiting = (await store.submit(make_op(clock, compartment_id="c1"))).operation
    running = (await store.submit(make_op(clock, compartment_id="c1"))).operation
    await store.claim("w", ["test.op"], clock.now(), 30, 1)
    held = (await store.submit(make_op(clock, compartment_id="c1"))).operation
    await store.hold(held.id, clock.now())
    elsewhere = await _canceled(store, clock, "c2")
    clock.advance(1)

    batches = []
    while batch := await store.purge_compartment("c1", clock.now(), limit=4):
        batches.append(batch)
        if len(batch) < 4:
            break
    assert [len(b) for b in batches] == [4, 2]
    purged = [tomb for batch in batches for tomb in batch]
    assert [tomb.id for tomb in purged] == sorted(ended)  # oldest id first
    assert {tomb.status for tomb in purged} == {Status.CANCELED, Status.SUCCEEDED}
    for tomb in purged:
        assert tomb.compartment_id == "c1" and tomb.operation_type == "test.op"
        assert tomb.reason == PURGED_WITH_COMPARTMENT and tomb.purged_at == clock.now()
        assert await store.get(tomb.id) is None
        assert await store.get_tombstone(tomb.id) == tomb
    for kept in (waiting.id, running.id, held.id, elsewhere):
        assert await store.get(kept) is not None and await store.get_tombstone(kept) is None
    assert await store.purge_compartment("c1", clock.now()) == []


async def test_purge_compartment_of_an_empty_or_unknown_compartment(
    store: Store, clock: ManualClock
) -> None:
    assert await store.purge_compartment("nobody", clock.now()) == []
    op = (await store.submit(make_op(clock, compartment_id="c1"))).operation
    assert await store.purge_compartment("c1", clock.now()) == []
    assert await store.get(op.id) is not None
