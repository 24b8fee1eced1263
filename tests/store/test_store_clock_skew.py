"""Clocks disagree (each API server and worker stamps with its own): the stored times stay ordered.

Found by the chaos run (bench/chaos): a worker whose clock ran behind the API server's wrote a
time_started before time_accepted, and an end could be stamped before the start."""

from __future__ import annotations

from datetime import timedelta

from longrun.model import ManualClock, Operation, Status
from longrun.store import Store
from longrun.store.base import Outcome
from tests.store.conftest import later, make_op


async def _claimed(store: Store, clock: ManualClock, skew: float) -> tuple[Operation, str]:
    """Submit one operation now; claim it with a worker clock ``skew`` seconds off."""
    new = make_op(clock)
    await store.submit(new)
    claims = await store.claim("w1", ["test.op"], later(clock, skew), 30, 1)
    assert [c.operation.id for c in claims] == [new.operation.id]
    return claims[0].operation, claims[0].lease_id


async def test_a_worker_behind_never_starts_or_ends_before_the_acceptance(
    store: Store, clock: ManualClock
) -> None:
    op, lease = await _claimed(store, clock, -10)
    assert op.time_started == op.time_accepted
    done = await store.finish(op.id, lease, later(clock, -8), Outcome(status=Status.SUCCEEDED))
    assert done.time_started == done.time_accepted == done.time_finished


async def test_a_cancel_stamped_by_a_server_behind_the_worker_ends_after_the_start(
    store: Store, clock: ManualClock
) -> None:
    op, lease = await _claimed(store, clock, 30)  # the worker's clock runs 30 s ahead
    assert op.time_started == clock.now() + timedelta(seconds=30)
    canceling = await store.request_cancel(op.id, later(clock, 1))
    assert canceling.status is Status.CANCELING
    done = await store.finish(op.id, lease, later(clock, 2), Outcome(status=Status.CANCELED))
    assert done.status is Status.CANCELED
    assert done.time_finished == done.time_started


async def test_a_queued_cancel_by_a_server_behind_ends_after_the_acceptance(
    store: Store, clock: ManualClock
) -> None:
    new = make_op(clock)
    await store.submit(new)
    canceled = await store.request_cancel(new.operation.id, later(clock, -5))
    assert canceled.status is Status.CANCELED
    assert canceled.time_finished == canceled.time_accepted
