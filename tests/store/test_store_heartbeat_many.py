"""Store contract: heartbeat_many writes a pass of heartbeats at once, answering each one alone."""

from __future__ import annotations

import pytest

from longrun.model import LeaseLost, LogEntry, ManualClock, Progress, Status
from longrun.store import Store
from longrun.store.base import Beat, Update
from longrun.store.delayed import DelayedStore
from tests.store.conftest import later, make_op


@pytest.fixture(params=["engine", "fallback"])
def beating(request: pytest.FixtureRequest, store: Store) -> Store:
    """The engine's own heartbeat_many, or the Store fallback (one heartbeat per beat)."""
    return store if request.param == "engine" else DelayedStore(store, 0.0)


async def test_each_beat_is_answered_alone(beating: Store, clock: ManualClock) -> None:
    news, bare, stale, canceling = (make_op(clock, max_attempts=2) for _ in range(4))
    for new in (news, bare, stale, canceling):
        await beating.submit(new)
    claims = {c.operation.id: c for c in await beating.claim("w", ["test.op"], clock.now(), 10, 4)}
    assert len(claims) == 4
    # the stale beat's lease is reaped and the operation claimed again by another worker
    clock.advance(11)
    for op_id in (news, bare, canceling):
        await beating.heartbeat(op_id.operation.id, claims[op_id.operation.id].lease_id,
                                clock.now(), 10, Update())
    assert (await beating.reap(clock.now())).retried == [stale.operation.id]
    clock.advance(2)
    [reclaim] = await beating.claim("w2", ["test.op"], clock.now(), 10, 1)
    assert reclaim.operation.id == stale.operation.id
    await beating.request_cancel(canceling.operation.id, clock.now())
    before = {n.operation.id: await beating.get(n.operation.id) for n in (bare, stale)}
    clock.advance(1)
    progress = Progress(items_done=3, items_total=10)
    entry = LogEntry(timestamp=clock.now(), message="three")
    beats = [
        Beat(news.operation.id, claims[news.operation.id].lease_id,
             Update(percent_complete=30, progress=progress, logs=[entry])),
        Beat(bare.operation.id, claims[bare.operation.id].lease_id, Update()),
        Beat(stale.operation.id, claims[stale.operation.id].lease_id,
             Update(percent_complete=99, logs=[entry])),
        Beat(canceling.operation.id, claims[canceling.operation.id].lease_id, Update()),
    ]
    answers = await beating.heartbeat_many(beats, clock.now(), 10)

    assert answers[0] is Status.IN_PROGRESS and answers[1] is Status.IN_PROGRESS
    assert isinstance(answers[2], LeaseLost) and answers[2].target == stale.operation.id
    assert answers[3] is Status.CANCELING
    written = await beating.get(news.operation.id)
    assert written is not None and written.percent_complete == 30
    assert written.progress == progress and [e.message for e in written.logs] == ["three"]
    assert written.last_action_time == clock.now()
    # a bare renewal moves nothing a reader sees; the stale beat changed nothing at all
    assert await beating.get(bare.operation.id) == before[bare.operation.id]
    untouched = await beating.get(stale.operation.id)
    assert untouched == before[stale.operation.id] and untouched is not None
    assert untouched.percent_complete != 99 and untouched.worker_id == "w2"


async def test_a_renewal_in_a_batch_extends_the_lease(beating: Store, clock: ManualClock) -> None:
    new = make_op(clock, max_attempts=1)
    await beating.submit(new)
    [claim] = await beating.claim("w", ["test.op"], clock.now(), 10, 1)
    clock.advance(8)
    beat = Beat(new.operation.id, claim.lease_id, Update())
    assert await beating.heartbeat_many([beat], clock.now(), 10) == [Status.IN_PROGRESS]
    clock.advance(8)  # 16 s after the claim, 8 after the renewal: the lease still holds
    report = await beating.reap(clock.now())
    assert report.total == 0
    assert (await beating.get(new.operation.id)).status is Status.IN_PROGRESS  # type: ignore[union-attr]
    assert await beating.heartbeat_many([], later(clock, 1), 10) == []
