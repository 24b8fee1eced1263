"""Service.submit and its rules, on a real SQLite file: validation, idempotency, tenancy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from longrun.engine.registry import App
from longrun.model import (
    Forbidden,
    IdempotencyMismatch,
    InvalidInput,
    ManualClock,
    Status,
)
from longrun.service import Service, validate_compartment_id
from longrun.store import Store, open_store
from longrun.store.base import ListQuery

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class SizeInput(BaseModel):
    size: int


def make_app() -> App:
    app = App()

    @app.operation("t.size", input=SizeInput, max_attempts=3, lost_worker="fail", timeout=9.0)
    def size(ctx: Any, data: SizeInput) -> None:
        """Do something of a size."""

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
def service(store: Store) -> Service:
    return Service(store, make_app(), clock=ManualClock(T0))


async def everything(store: Store) -> list[Any]:
    return await store.list(ListQuery(limit=1000))


async def test_submit_builds_an_accepted_operation(service: Service, store: Store) -> None:
    op, created = await service.submit("t.size", {"size": "3"}, compartment_id="c1")
    assert created
    assert op.status is Status.ACCEPTED
    assert op.input == {"size": 3}  # the validated, stored form
    assert (op.time_accepted, op.last_action_time) == (T0, T0)
    assert (op.attempt, op.max_attempts) == (1, 3)
    stored = await store.get(op.id)
    assert stored == op


async def test_submit_passes_the_type_rules_to_the_store(service: Service, store: Store) -> None:
    op, _ = await service.submit("t.size", {"size": 1}, max_attempts=7)
    assert op.max_attempts == 7
    # the lost-worker policy "fail" is stored: an expired lease fails the operation at once
    claims = await store.claim("w", ["t.size"], T0, 1.0, 1)
    assert claims and claims[0].timeout == 9.0
    report = await store.reap(T0 + timedelta(seconds=5))
    assert report.failed == [op.id]


async def test_idempotent_replay_and_mismatch(service: Service, store: Store) -> None:
    first, created = await service.submit("t.size", {"size": 1}, idempotency_key="k")
    again, created_again = await service.submit("t.size", {"size": 1}, idempotency_key="k")
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    with pytest.raises(IdempotencyMismatch) as info:
        await service.submit("t.size", {"size": 2}, idempotency_key="k")
    assert info.value.http_status == 409
    with pytest.raises(IdempotencyMismatch):
        await service.submit("t.size", {"size": 1}, idempotency_key="k", max_attempts=2)
    assert [op.id for op in await everything(store)] == [first.id]


@pytest.mark.parametrize(
    ("kwargs", "target"),
    [
        ({"operation_type": "nope"}, "operationType"),
        ({"input": {"size": "big"}}, "input"),
        ({"input": None}, "input"),
        ({"compartment_id": "a/b"}, "compartmentId"),
        ({"idempotency_key": ""}, "idempotencyKey"),
        ({"idempotency_key": "k" * 257}, "idempotencyKey"),
        ({"max_attempts": 0}, "maxAttempts"),
        ({"not_before": datetime(2026, 1, 2)}, "notBefore"),
        ({"deadline": T0 - timedelta(seconds=1)}, "deadline"),
        ({"not_before": T0 + timedelta(hours=2), "deadline": T0 + timedelta(hours=1)}, "deadline"),
        ({"parent_id": "not-an-id"}, "parentId"),
    ],
)
async def test_refused_submits_write_nothing(
    service: Service, store: Store, kwargs: dict[str, Any], target: str
) -> None:
    args = {"operation_type": "t.size", "input": {"size": 1}, **kwargs}
    with pytest.raises(InvalidInput) as info:
        await service.submit(args.pop("operation_type"), args.pop("input"), **args)
    assert info.value.target == target
    assert await everything(store) == []


async def test_input_errors_name_field_paths(service: Service) -> None:
    with pytest.raises(InvalidInput) as info:
        await service.submit("t.size", {})
    assert [d["target"] for d in info.value.details] == ["input.size"]


async def test_submit_outside_the_callers_compartments_is_forbidden(
    service: Service, store: Store
) -> None:
    with pytest.raises(Forbidden):
        await service.submit("t.size", {"size": 1}, compartment_id="b", compartments={"a"})
    assert await everything(store) == []


async def test_parent_must_be_in_the_same_compartment(service: Service) -> None:
    parent, _ = await service.submit("t.size", {"size": 1}, compartment_id="a")
    child, _ = await service.submit("t.size", {"size": 1}, compartment_id="a", parent_id=parent.id)
    assert child.parent_id == parent.id
    with pytest.raises(InvalidInput):
        await service.submit("t.size", {"size": 1}, compartment_id="b", parent_id=parent.id)


def test_compartment_ids() -> None:
    for good in ("default", "a", "A.b_c:d-e", "x" * 128):
        assert validate_compartment_id(good) == good
    for bad in ("", "x" * 129, "a b", "a/b", "é"):
        with pytest.raises(InvalidInput):
            validate_compartment_id(bad)


def test_operation_types(service: Service) -> None:
    (info,) = service.operation_types()
    assert info["name"] == "t.size"
    assert info["description"] == "Do something of a size."
    assert info["inputSchema"]["required"] == ["size"]
    assert (info["maxAttempts"], info["timeout"]) == (3, 9.0)
