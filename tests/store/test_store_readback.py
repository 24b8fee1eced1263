"""Store contract: what a store reads back (unvalidated, for speed) equals the validated model."""

from __future__ import annotations

from longrun.model import (
    ActionType,
    LogEntry,
    LogLevel,
    ManualClock,
    Operation,
    OperationErrorInfo,
    Progress,
    Resource,
    Status,
)
from longrun.store import Store
from longrun.store.base import ListQuery, Outcome, Update
from tests.store.conftest import later, make_op


def assert_same_as_validated(op: Operation) -> None:
    """``op`` equals the model pydantic builds from its own dump, in Python and on the wire."""
    validated = Operation.model_validate(op.model_dump())
    assert op == validated
    assert op.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
    assert op.model_fields_set == set(Operation.model_fields)  # every field, as read
    for name in Operation.model_fields:
        assert type(getattr(op, name)) is type(getattr(validated, name)), name


async def test_every_read_equals_the_validated_model(store: Store, clock: ManualClock) -> None:
    parent = make_op(clock, input={"deep": {"a": [1, 2.5, None]}, "s": "é"}, max_attempts=2)
    child = make_op(clock, parent_id=parent.operation.id, deadline=later(clock, 60))
    for new in (parent, child):
        await store.submit(new)
    [claim] = await store.claim("w", ["test.op"], clock.now(), 30, 1)
    assert_same_as_validated(claim.operation)
    update = Update(
        percent_complete=40,
        progress=Progress(bytes_done=4, bytes_total=10, properties={"objectType": "db"}),
        estimated_completion_time=later(clock, 9),
        logs=[LogEntry(timestamp=clock.now(), level=LogLevel.WARNING, message="half")],
        resources=[Resource(entity_type="file", action_type=ActionType.CREATED, identifier="f")],
        errors=[
            OperationErrorInfo(
                code="Oops", message="m", target="t", details=[{"code": "x"}], timestamp=clock.now()
            )
        ],
    )
    assert await store.heartbeat(claim.operation.id, claim.lease_id, clock.now(), 30, update) is (
        Status.IN_PROGRESS
    )
    running = await store.get(claim.operation.id)
    assert running is not None and running.children == [child.operation.id]
    assert running.progress.properties == {"object_type": "db"}
    assert_same_as_validated(running)
    outcome = Outcome(status=Status.SUCCEEDED, result={"n": [1, 2]}, resource_location="/r")
    done = await store.finish(claim.operation.id, claim.lease_id, later(clock, 1), outcome)
    assert done.status is Status.SUCCEEDED and done.percent_complete == 100.0
    assert done.result == {"n": [1, 2]} and done.time_finished is not None
    assert_same_as_validated(done)
    for op in await store.list(ListQuery()):
        assert_same_as_validated(op)
