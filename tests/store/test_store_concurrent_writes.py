"""Store contract: many submits and finishes at once (an engine may commit them together) give
each caller exactly the answer it would get alone, and the fence holds row by row."""

from __future__ import annotations

import asyncio

import pytest

from longrun.model import LeaseLost, LogEntry, ManualClock, Progress, Status
from longrun.store import Store
from longrun.store.base import Outcome
from tests.store.conftest import later, make_op


async def test_concurrent_submits_each_get_their_own_answer(store: Store, clock: ManualClock) -> None:
    plain = [make_op(clock, input={"i": i, "verbatim": [1.5, "x"]}) for i in range(40)]
    keyed = [make_op(clock, idempotency_key="same", request_hash=f"h{i}") for i in range(3)]
    results = await asyncio.gather(*(store.submit(new) for new in [*plain, *keyed]))
    for new, result in zip(plain, results[:40], strict=True):
        assert result.created and result.operation.id == new.operation.id
        got = await store.get(new.operation.id)
        assert got is not None and got.model_dump() == new.operation.model_dump()
    created = [r for r in results[40:] if r.created]
    assert len(created) == 1  # one key, one operation: the others are replays of it
    winner = created[0].operation.id
    for result in results[40:]:
        assert result.operation.id == winner
        assert result.created or result.request_hash == created[0].request_hash


@pytest.mark.parametrize("method", ["finish", "finish_status"])
async def test_concurrent_finishes_are_fenced_row_by_row(
    store: Store, clock: ManualClock, method: str
) -> None:
    finish = getattr(store, method)  # finish_status: the worker's (SQLite merges a burst)
    ops = [(await store.submit(make_op(clock, max_attempts=2))).operation for _ in range(12)]
    claims = {c.operation.id: c for c in await store.claim("w", ["test.op"], clock.now(), 30, 12)}
    assert len(claims) == 12
    canceled = ops[3].id
    await store.request_cancel(canceled, clock.now())
    log = LogEntry(timestamp=clock.now(), message="done")
    outcomes = {op.id: Outcome(status=Status.SUCCEEDED, result={"n": i, "f": 1.0}, logs=[log],
                               progress=Progress(items_done=i, items_total=12))
                for i, op in enumerate(ops)}  # fmt: skip
    outcomes[ops[1].id] = Outcome(status=Status.FAILED)
    outcomes[ops[2].id] = Outcome(retry_at=later(clock, 5))
    outcomes[ops[3].id] = Outcome(retry_at=later(clock, 5))  # while CANCELING: ends CANCELED
    stale = {op.id: claims[op.id].lease_id for op in ops}
    stale[ops[4].id] = "not-the-lease"
    calls = [finish(op.id, stale[op.id], clock.now(), outcomes[op.id]) for op in ops]
    calls.append(finish(ops[5].id, claims[ops[5].id].lease_id, clock.now(), outcomes[ops[5].id]))
    results = await asyncio.gather(*calls, return_exceptions=True)
    by_op = dict(zip([op.id for op in ops], results, strict=False))
    assert isinstance(by_op[ops[4].id], LeaseLost)
    # the same finish twice at once: exactly one lands, the other finds its lease gone
    assert sorted(isinstance(r, LeaseLost) for r in (results[5], results[-1])) == [False, True]
    for i, op in enumerate(ops):
        got = await store.get(op.id)
        assert got is not None
        if i == 4:
            assert got.status is Status.IN_PROGRESS and got.percent_complete == 0
            continue
        assert not isinstance(by_op[op.id], BaseException) or i == 5
        expected = {1: Status.FAILED, 2: Status.ACCEPTED, 3: Status.CANCELED}.get(i, Status.SUCCEEDED)
        assert got.status is expected, (i, got.status)
        if expected is Status.SUCCEEDED:
            assert got.result == {"n": i, "f": 1.0} and got.percent_complete == 100
            assert [e.message for e in got.logs] == ["done"] and got.progress.items_done == i
    assert (await store.get(ops[2].id)).attempt == 2  # type: ignore[union-attr]
    kept = await finish(ops[4].id, claims[ops[4].id].lease_id, clock.now(), Outcome())
    kept = kept if isinstance(kept, Status) else kept.status
    assert kept is Status.SUCCEEDED  # the refused stale write left the real lease alone
    with pytest.raises(LeaseLost):
        await finish(ops[0].id, claims[ops[0].id].lease_id, clock.now(), outcomes[ops[0].id])
