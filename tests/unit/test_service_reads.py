"""Service reads, tenancy, waits and Retry-After, on a real SQLite file."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from longrun.engine.registry import App
from longrun.model import Gone, InvalidInput, ManualClock, NotFound, Operation, Status
from longrun.service import Service, retry_after_seconds
from longrun.store import Store, open_store
from longrun.store.base import Outcome

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_app() -> App:
    app = App()

    @app.operation("t.any")
    def anything(ctx: Any, data: Any) -> None:
        """Anything."""

    return app


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/service.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def service(store: Store, clock: ManualClock) -> Service:
    return Service(store, make_app(), clock=clock, max_wait_seconds=0.3)


async def submit(service: Service, compartment: str = "a") -> Operation:
    op, _ = await service.submit("t.any", {}, compartment_id=compartment)
    return op


async def finish(service: Service, op: Operation, status: Status = Status.SUCCEEDED) -> None:
    now = service.clock.now()
    (claim,) = await service.store.claim("w", ["t.any"], now, 30.0, 1)
    await service.store.finish(op.id, claim.lease_id, now, Outcome(status=status))


async def test_a_caller_sees_only_its_compartments(service: Service) -> None:
    mine = await submit(service, "a")
    theirs = await submit(service, "b")
    assert (await service.get(mine.id, {"a"})).id == mine.id
    with pytest.raises(NotFound) as outside:
        await service.get(theirs.id, {"a"})
    with pytest.raises(NotFound) as unknown:
        await service.get("01900000-0000-7000-8000-000000000000", {"a"})
    assert outside.value.to_body() == unknown.value.to_body()  # existence is not leaked
    for action in (service.cancel, service.release, service.delete):
        with pytest.raises(NotFound):
            await action(theirs.id, {"a"})
    with pytest.raises(NotFound):
        await service.hold(theirs.id, "x", {"a"})
    assert (await service.get(theirs.id)).status is Status.ACCEPTED
    page = await service.list(compartments={"a"})
    assert [op.id for op in page.items] == [mine.id]
    page = await service.list(compartment_ids=["b"], compartments={"a"})
    assert page.items == []
    page = await service.list(compartment_ids=["a", "b"])
    assert [op.id for op in page.items] == [theirs.id, mine.id]


async def test_malformed_ids_are_not_found(service: Service) -> None:
    for bad in ("", "x", "01900000-0000-7000-8000-00000000000G", "../etc", "A" * 36):
        with pytest.raises(NotFound):
            await service.get(bad)


async def test_a_deleted_operation_is_gone_with_its_purge_time(
    service: Service, clock: ManualClock
) -> None:
    op = await submit(service)
    await finish(service, op)
    clock.advance(5)
    await service.delete(op.id)
    with pytest.raises(Gone) as info:
        await service.get(op.id)
    detail = info.value.details[0]
    assert detail["purgedAt"] == "2026-01-01T12:00:05Z"
    assert detail["status"] == "SUCCEEDED"
    assert info.value.http_status == 410
    with pytest.raises(NotFound):  # a tombstone is scoped like the operation was
        await service.get(op.id, {"elsewhere"})


async def test_wait_is_bounded_by_max_wait_seconds(service: Service) -> None:
    op = await submit(service)
    started = time.monotonic()
    got = await service.wait(op.id, 30)
    assert got.status is Status.ACCEPTED
    assert 0.25 <= time.monotonic() - started < 3


async def test_wait_returns_at_once_when_terminal(service: Service) -> None:
    op = await submit(service)
    await service.cancel(op.id)
    started = time.monotonic()
    assert (await service.wait(op.id, 30)).status is Status.CANCELED
    assert time.monotonic() - started < 0.25


async def test_wait_rejects_negative_timeouts(service: Service) -> None:
    op = await submit(service)
    with pytest.raises(InvalidInput):
        await service.wait(op.id, -1)
    assert (await service.wait(op.id, 0)).id == op.id


async def test_hold_release_and_cancel(service: Service) -> None:
    op = await submit(service)
    assert (await service.hold(op.id, "later")).status is Status.ON_HOLD
    assert (await service.release(op.id)).status is Status.ACCEPTED
    assert (await service.cancel(op.id)).status is Status.CANCELED
    with pytest.raises(InvalidInput):
        await service.hold(op.id, "x" * 2000)


async def test_health(service: Service) -> None:
    health = await service.health()
    assert health["status"] == "ok" and health["store"] == "sqlite"
    assert health["schemaVersion"] >= 1


def _op(eta: datetime | None) -> Operation:
    return Operation(
        id="01900000-0000-7000-8000-000000000000",
        operation_type="t.any",
        compartment_id="a",
        status=Status.IN_PROGRESS,
        time_accepted=T0,
        last_action_time=T0,
        estimated_completion_time=eta,
    )


@pytest.mark.parametrize(
    ("seconds_left", "expected"),
    [(None, 1), (-30, 1), (0, 1), (5, 1), (10, 1), (11, 2), (300, 30), (600, 60), (86400, 60)],
)
def test_retry_after_is_a_tenth_of_the_time_left(seconds_left: int | None, expected: int) -> None:
    eta = None if seconds_left is None else T0 + timedelta(seconds=seconds_left)
    assert retry_after_seconds(_op(eta), T0) == expected
