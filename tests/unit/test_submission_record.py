"""The record a submit writes is built unvalidated: it must equal what validation would build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from longrun.engine.registry import App
from longrun.engine.submission import new_operation
from longrun.model import Operation, Status


def test_the_new_record_equals_the_validated_model() -> None:
    app = App()

    @app.operation("t.one", max_attempts=4)
    async def one(ctx: object, input: object) -> None:  # noqa: A002
        return None

    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    for key, attempts in ((None, None), ("k", 2)):
        new = new_operation(
            app.get("t.one"),
            {"a": [1, {"b": None}]},
            compartment_id="c1",
            now=now,
            idempotency_key=key,
            not_before=now + timedelta(seconds=5),
            deadline=now + timedelta(seconds=50),
            max_attempts=attempts,
            parent_id=None,
        )
        op = new.operation
        validated = Operation.model_validate(op.model_dump())
        assert op == validated
        assert op.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
        assert op.status is Status.ACCEPTED and op.max_attempts == (attempts or 4)
        assert (new.request_hash is None) == (key is None)
