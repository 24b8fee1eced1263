"""Store contract: manual transitions, the reaper's policies, deadlines, retention and tombstones."""

from __future__ import annotations

import pytest

from longrun.model import IllegalTransition, LostWorkerPolicy, ManualClock, NotFound, Status, new_id
from longrun.store import Store
from longrun.store.base import Outcome
from tests.store.conftest import later, make_op


async def test_cancel_hold_release_before_start(store: Store, clock: ManualClock) -> None:
    op = (await store.submit(make_op(clock))).operation
    held = await store.hold(op.id, clock.now(), "maintenance window")
    assert held.status is Status.ON_HOLD and "maintenance window" in held.logs[-1].message
    assert await store.claim("w", ["test.op"], clock.now(), 30, 1) == []
    with pytest.raises(IllegalTransition):
        await store.hold(op.id, clock.now())
    assert (await store.release(op.id, clock.now())).status is Status.ACCEPTED
    canceled = await store.request_cancel(op.id, clock.now())
    assert canceled.status is Status.CANCELED and canceled.time_finished == clock.now()
    for action in (store.request_cancel, store.release, store.hold):
        with pytest.raises(IllegalTransition):
            await action(op.id, clock.now())
    with pytest.raises(NotFound):
        await store.request_cancel(new_id(), clock.now())


@pytest.mark.parametrize(
    ("policy", "attempt_limit", "expected"),
    [
        (LostWorkerPolicy.RETRY, 2, Status.ACCEPTED),
        (LostWorkerPolicy.RETRY, 1, Status.FAILED),
        (LostWorkerPolicy.FAIL, 5, Status.FAILED),
        (LostWorkerPolicy.HOLD, 5, Status.ON_HOLD),
    ],
)
async def test_reaper_applies_the_lost_worker_policy(
    store: Store, clock: ManualClock, policy: LostWorkerPolicy, attempt_limit: int, expected: Status
) -> None:
    op = (
        await store.submit(
            make_op(clock, max_attempts=attempt_limit, lost_worker_policy=policy, retry_backoff=2.0)
        )
    ).operation
    await store.claim("w1", ["test.op"], clock.now(), 10, 1)
    clock.advance(9)
    assert (await store.reap(clock.now())).total == 0
    clock.advance(2)
    assert (await store.reap(clock.now())).total == 1
    got = await store.get(op.id)
    assert got is not None and got.status is expected
    assert "w1" in got.logs[-1].message
    if expected is Status.FAILED:
        assert [e.code for e in got.errors] == ["WorkerLost"]
        assert got.time_finished == clock.now()
    if expected is Status.ACCEPTED:
        assert got.attempt == 2 and got.not_before == later(clock, 2.0)


async def test_reaper_cancels_a_canceling_operation_whose_worker_is_gone(
    store: Store, clock: ManualClock
) -> None:
    op = (await store.submit(make_op(clock, max_attempts=5))).operation
    await store.claim("w", ["test.op"], clock.now(), 10, 1)
    await store.request_cancel(op.id, clock.now())
    clock.advance(11)
    assert (await store.reap(clock.now())).canceled == [op.id]
    got = await store.get(op.id)
    assert got is not None and got.status is Status.CANCELED


async def test_deadline_passed_before_start_is_missed(store: Store, clock: ManualClock) -> None:
    late = (await store.submit(make_op(clock, deadline=later(clock, 5)))).operation
    held = (await store.submit(make_op(clock, deadline=later(clock, 5)))).operation
    await store.hold(held.id, clock.now())
    on_time = (await store.submit(make_op(clock, deadline=later(clock, 500)))).operation
    clock.advance(6)
    report = await store.reap(clock.now())
    assert sorted(report.missed) == sorted([late.id, held.id])
    for op_id, status in (
        (late.id, Status.MISSED),
        (held.id, Status.MISSED),
        (on_time.id, Status.ACCEPTED),
    ):
        got = await store.get(op_id)
        assert got is not None and got.status is status


async def test_delete_leaves_a_tombstone_and_only_takes_terminal(
    store: Store, clock: ManualClock
) -> None:
    op = (await store.submit(make_op(clock))).operation
    with pytest.raises(IllegalTransition):
        await store.delete(op.id, clock.now())
    await store.request_cancel(op.id, clock.now())
    await store.delete(op.id, clock.now())
    assert await store.get(op.id) is None
    tomb = await store.get_tombstone(op.id)
    assert tomb is not None and tomb.status is Status.CANCELED and tomb.reason == "deleted"
    assert await store.get_tombstone(new_id()) is None


async def test_purge_removes_old_terminal_operations_only(store: Store, clock: ManualClock) -> None:
    old = (await store.submit(make_op(clock))).operation
    claim = (await store.claim("w", ["test.op"], clock.now(), 30, 1))[0]
    await store.finish(old.id, claim.lease_id, clock.now(), Outcome(status=Status.SUCCEEDED))
    active = (await store.submit(make_op(clock))).operation
    clock.advance(100)
    recent = (await store.submit(make_op(clock))).operation
    await store.request_cancel(recent.id, clock.now())
    assert await store.purge(later(clock, -50), clock.now()) == 1
    assert await store.get(old.id) is None
    tomb = await store.get_tombstone(old.id)
    assert tomb is not None and tomb.purged_at == clock.now() and tomb.status is Status.SUCCEEDED
    assert await store.get(active.id) is not None and await store.get(recent.id) is not None


async def test_schema_is_versioned_and_reopening_changes_nothing(store: Store) -> None:
    from longrun.store.migrate import load_migrations

    engine = getattr(store, "engine", "sqlite")
    assert await store.schema_version() == len(load_migrations(engine))
    await store.close()
    await store.open()
    assert await store.schema_version() == len(load_migrations(engine))


async def test_tombstones_expire_after_their_own_horizon(store: Store, clock: ManualClock) -> None:
    old = (await store.submit(make_op(clock))).operation
    await store.request_cancel(old.id, clock.now())
    await store.delete(old.id, clock.now())
    clock.advance(100)
    recent = (await store.submit(make_op(clock))).operation
    await store.request_cancel(recent.id, clock.now())
    await store.delete(recent.id, clock.now())
    assert await store.expire_tombstones(later(clock, -50)) == 1
    assert await store.get_tombstone(old.id) is None  # now answers 404 like an unknown id
    assert await store.get_tombstone(recent.id) is not None
    assert await store.expire_tombstones(later(clock, -50)) == 0
