"""Resource locks on every engine: all-or-nothing, live only with the holder's lease."""

from __future__ import annotations

import pytest

from longrun.model import LeaseLost, ManualClock, Status
from longrun.store import Store
from longrun.store.base import Claim, Outcome
from tests.store.conftest import later, make_op


async def _running(store: Store, clock: ManualClock, n: int = 1) -> list[Claim]:
    for _ in range(n):
        await store.submit(make_op(clock))
    return await store.claim("w1", ["test.op"], clock.now(), 30.0, n)


async def test_locks_are_taken_all_or_none(store: Store, clock: ManualClock) -> None:
    a, b = await _running(store, clock, 2)
    now = clock.now()
    assert (
        await store.acquire_locks(a.operation.id, a.lease_id, ["path:/x", "path:/y"], now) is None
    )
    held = await store.acquire_locks(b.operation.id, b.lease_id, ["path:/z", "path:/y"], now)
    assert held == ("path:/y", a.operation.id)
    assert await store.lock_holders(["path:/x", "path:/y", "path:/z"]) == {
        "path:/x": a.operation.id,
        "path:/y": a.operation.id,
    }  # nothing of b's: /z was not taken either
    again = await store.acquire_locks(a.operation.id, a.lease_id, ["path:/x"], now)
    assert again is None  # a holder may take its own keys again


async def test_a_lock_dies_with_its_holder(store: Store, clock: ManualClock) -> None:
    a, b = await _running(store, clock, 2)
    now = clock.now()
    assert await store.acquire_locks(a.operation.id, a.lease_id, ["k"], now) is None
    await store.finish(a.operation.id, a.lease_id, now, Outcome(status=Status.SUCCEEDED))
    assert await store.lock_holders(["k"]) == {}
    assert await store.acquire_locks(b.operation.id, b.lease_id, ["k"], now) is None
    await store.release_locks(a.operation.id)  # tidying a dead row never touches b's
    assert await store.lock_holders(["k"]) == {"k": b.operation.id}


async def test_a_requeued_or_reaped_holder_holds_nothing(store: Store, clock: ManualClock) -> None:
    (a,) = await _running(store, clock)
    now = clock.now()
    assert await store.acquire_locks(a.operation.id, a.lease_id, ["k"], now) is None
    back = Outcome(status=Status.ACCEPTED, retry_at=now, counts_attempt=False)
    await store.finish(a.operation.id, a.lease_id, now, back)
    assert await store.lock_holders(["k"]) == {}
    (again,) = await store.claim("w2", ["test.op"], now, 1.0, 1)
    assert await store.acquire_locks(again.operation.id, again.lease_id, ["k"], now) is None
    await store.reap(later(clock, 5))  # the lease of w2 expired
    assert await store.lock_holders(["k"]) == {}


async def test_only_the_current_lease_may_take_locks(store: Store, clock: ManualClock) -> None:
    (a,) = await _running(store, clock)
    with pytest.raises(LeaseLost):
        await store.acquire_locks(a.operation.id, "not-the-lease", ["k"], clock.now())
    assert await store.lock_holders(["k"]) == {}
