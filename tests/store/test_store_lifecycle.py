"""Store contract: submit, claim, heartbeat, finish, and the fence on every worker write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from longrun.model import (
    IllegalTransition,
    LeaseLost,
    LogEntry,
    ManualClock,
    Progress,
    Resource,
    Status,
)
from longrun.store import Store, open_store
from longrun.store.base import Outcome, Update
from tests.store.conftest import later, make_op


async def test_submit_then_get_returns_every_field(store: Store, clock: ManualClock) -> None:
    new = make_op(clock, input={"path": "/x", "deep": {"a": [1, 2]}}, max_attempts=3,
                  not_before=later(clock, 5), deadline=later(clock, 50), idempotency_key="k1")
    result = await store.submit(new)
    assert result.created
    got = await store.get(new.operation.id)
    assert got is not None
    assert got.model_dump() == new.operation.model_dump()


async def test_idempotency_key_returns_the_first_operation(store: Store, clock: ManualClock) -> None:
    first = await store.submit(make_op(clock, idempotency_key="same", request_hash="h1"))
    again = await store.submit(make_op(clock, idempotency_key="same", request_hash="h2"))
    assert not again.created
    assert again.operation.id == first.operation.id
    assert again.request_hash == "h1"
    other = await store.submit(make_op(clock, idempotency_key="same", compartment_id="c2"))
    assert other.created and other.operation.id != first.operation.id


async def test_claim_takes_oldest_first_of_known_types_only(store: Store, clock: ManualClock) -> None:
    ids = [(await store.submit(make_op(clock))).operation.id for _ in range(3)]
    await store.submit(make_op(clock, operation_type="other.type"))
    claims = await store.claim("w1", ["test.op"], clock.now(), 30, limit=2)
    assert [c.operation.id for c in claims] == ids[:2]
    assert all(c.operation.status is Status.IN_PROGRESS and c.operation.worker_id == "w1" for c in claims)
    rest = await store.claim("w2", ["test.op"], clock.now(), 30, limit=10)
    assert [c.operation.id for c in rest] == ids[2:]


async def test_claim_honours_not_before_and_skips_passed_deadlines(store: Store, clock: ManualClock) -> None:
    future = await store.submit(make_op(clock, not_before=later(clock, 60)))
    await store.submit(make_op(clock, deadline=later(clock, -1)))
    assert await store.claim("w", ["test.op"], clock.now(), 30, 10) == []
    clock.advance(61)
    claims = await store.claim("w", ["test.op"], clock.now(), 30, 10)
    assert [c.operation.id for c in claims] == [future.operation.id]


async def test_concurrent_claims_never_overlap(store: Store, clock: ManualClock, tmp_path: Path) -> None:
    for _ in range(200):
        await store.submit(make_op(clock))
    seen: list[str] = []

    async def drain(name: str) -> None:
        while claims := await store.claim(name, ["test.op"], clock.now(), 30, 7):
            seen.extend(c.operation.id for c in claims)

    await asyncio.gather(*(drain(f"w{i}") for i in range(5)))
    assert len(seen) == 200 and len(set(seen)) == 200


async def test_heartbeat_keeps_the_highest_percent_and_appends(store: Store, clock: ManualClock) -> None:
    op = (await store.submit(make_op(clock))).operation
    claim = (await store.claim("w", ["test.op"], clock.now(), 30, 1))[0]
    clock.advance(1)
    progress = Progress(bytes_done=10, bytes_total=100, properties={"object_type": "X"})
    entry = LogEntry(timestamp=clock.now(), message="first")
    res = Resource(entity_type="file", action_type="CREATED", identifier="/a")
    status = await store.heartbeat(op.id, claim.lease_id, clock.now(), 30,
                                   Update(percent_complete=50, progress=progress, logs=[entry], resources=[res]))
    assert status is Status.IN_PROGRESS
    await store.heartbeat(op.id, claim.lease_id, clock.now(), 30,
                          Update(percent_complete=20, logs=[LogEntry(timestamp=clock.now(), message="second")]))
    got = await store.get(op.id)
    assert got is not None
    assert got.percent_complete == 50
    assert [e.message for e in got.logs] == ["first", "second"]
    assert got.progress == progress and got.resources == [res]
    assert got.last_action_time == clock.now()


async def test_writes_with_a_stale_lease_are_refused_and_change_nothing(store: Store, clock: ManualClock) -> None:
    op = (await store.submit(make_op(clock, max_attempts=2))).operation
    stale = (await store.claim("w1", ["test.op"], clock.now(), 10, 1))[0]
    clock.advance(11)
    assert (await store.reap(clock.now())).retried == [op.id]
    clock.advance(5)
    fresh = (await store.claim("w2", ["test.op"], clock.now(), 10, 1))[0]
    assert fresh.operation.attempt == 2
    with pytest.raises(LeaseLost):
        await store.heartbeat(op.id, stale.lease_id, clock.now(), 10, Update(percent_complete=99))
    with pytest.raises(LeaseLost):
        await store.finish(op.id, stale.lease_id, clock.now(), Outcome(status=Status.FAILED))
    got = await store.get(op.id)
    assert got is not None and got.status is Status.IN_PROGRESS and got.worker_id == "w2"
    assert got.percent_complete == 0
    done = await store.finish(op.id, fresh.lease_id, clock.now(), Outcome(status=Status.SUCCEEDED, result=[1]))
    assert done.status is Status.SUCCEEDED and done.result == [1] and done.percent_complete == 100


async def test_finish_with_retry_requeues_with_the_next_attempt(store: Store, clock: ManualClock) -> None:
    op = (await store.submit(make_op(clock, max_attempts=3))).operation
    claim = (await store.claim("w", ["test.op"], clock.now(), 30, 1))[0]
    back = await store.finish(op.id, claim.lease_id, clock.now(), Outcome(retry_at=later(clock, 4)))
    assert back.status is Status.ACCEPTED and back.attempt == 2 and back.not_before == later(clock, 4)
    assert back.worker_id is None and back.time_finished is None
    assert await store.claim("w", ["test.op"], clock.now(), 30, 1) == []


async def test_cancel_while_running_goes_through_canceling(store: Store, clock: ManualClock) -> None:
    op = (await store.submit(make_op(clock))).operation
    claim = (await store.claim("w", ["test.op"], clock.now(), 30, 1))[0]
    assert (await store.request_cancel(op.id, clock.now())).status is Status.CANCELING
    assert (await store.request_cancel(op.id, clock.now())).status is Status.CANCELING
    assert await store.heartbeat(op.id, claim.lease_id, clock.now(), 30, Update()) is Status.CANCELING
    # a retry asked for while canceling ends the operation CANCELED instead
    done = await store.finish(op.id, claim.lease_id, clock.now(), Outcome(retry_at=clock.now()))
    assert done.status is Status.CANCELED and done.time_finished == clock.now()


async def test_finish_cannot_make_an_illegal_transition(store: Store, clock: ManualClock) -> None:
    op = (await store.submit(make_op(clock))).operation
    claim = (await store.claim("w", ["test.op"], clock.now(), 30, 1))[0]
    with pytest.raises(IllegalTransition):
        await store.finish(op.id, claim.lease_id, clock.now(), Outcome(status=Status.MISSED))
    got = await store.get(op.id)
    assert got is not None and got.status is Status.IN_PROGRESS


async def test_a_second_process_on_the_same_file_sees_changes(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    a, b = open_store(url), open_store(url)
    await a.open()
    await b.open()
    try:
        waiter = asyncio.create_task(b.wait_for_change(10))
        await asyncio.sleep(0)  # let the waiter start watching before the write
        op = (await a.submit(make_op(clock))).operation
        assert await waiter is True
        assert (await b.get(op.id)) is not None
        assert await b.wait_for_change(0.05) is False
    finally:
        await a.close()
        await b.close()


async def test_a_commit_made_as_a_wait_begins_is_not_missed(tmp_path: Path, clock: ManualClock) -> None:
    import sqlite3

    store = open_store(f"sqlite:///{tmp_path}/race.db")
    await store.open()
    try:
        waiter = asyncio.create_task(store.wait_for_change(5))
        # another process commits before the watcher task has run at all
        with sqlite3.connect(tmp_path / "race.db") as other:
            other.execute("INSERT INTO tombstones VALUES ('x', 'c', 't', 'FAILED', 0, 'test')")
        assert await waiter is True
    finally:
        await store.close()
