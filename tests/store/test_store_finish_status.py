"""Store contract: finish_status writes what finish writes and answers the status it ended in."""

from __future__ import annotations

import pytest

from longrun.model import LeaseLost, LogEntry, ManualClock, Status
from longrun.store import Store
from longrun.store.base import Outcome
from tests.store.conftest import later, make_op


async def test_finish_status_writes_the_full_record(store: Store, clock: ManualClock) -> None:
    new = make_op(clock)
    await store.submit(new)
    [claim] = await store.claim("w", ["test.op"], clock.now(), 30, 1)
    outcome = Outcome(
        status=Status.SUCCEEDED,
        result={"ok": True},
        resource_location="/made",
        logs=[LogEntry(timestamp=clock.now(), message="done")],
    )
    ended = await store.finish_status(new.operation.id, claim.lease_id, later(clock, 2), outcome)
    assert ended is Status.SUCCEEDED
    done = await store.get(new.operation.id)
    assert done is not None and done.status is Status.SUCCEEDED
    assert done.percent_complete == 100.0 and done.result == {"ok": True}
    assert done.resource_location == "/made" and [e.message for e in done.logs] == ["done"]
    assert done.time_started == clock.now() and done.time_finished == later(clock, 2)
    assert done.worker_id == "w"
    with pytest.raises(LeaseLost):  # the lease ended with the attempt: fenced
        await store.finish_status(new.operation.id, claim.lease_id, later(clock, 3), outcome)


async def test_finish_status_after_a_cancel_request(store: Store, clock: ManualClock) -> None:
    new = make_op(clock, max_attempts=3)
    await store.submit(new)
    [claim] = await store.claim("w", ["test.op"], clock.now(), 30, 1)
    await store.request_cancel(new.operation.id, clock.now())
    outcome = Outcome(status=Status.CANCELED)
    ended = await store.finish_status(new.operation.id, claim.lease_id, later(clock, 1), outcome)
    assert ended is Status.CANCELED
    retry = Outcome(retry_at=later(clock, 5))  # a retry: back to ACCEPTED, attempt + 1
    other = make_op(clock, max_attempts=3)
    await store.submit(other)
    [second] = await store.claim("w", ["test.op"], clock.now(), 30, 1)
    assert await store.finish_status(other.operation.id, second.lease_id, clock.now(), retry) is (
        Status.ACCEPTED
    )
    back = await store.get(other.operation.id)
    assert back is not None and back.attempt == 2 and back.not_before == later(clock, 5)
