"""A runaway handler on the real SQLite store: its logs and errors stop at the caps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from longrun.engine.caps import EntryCaps
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import RetryableError, Status
from longrun.store import Store
from tests.engine.conftest import Submit, eventually, final


async def test_caps_hold_across_flushes_and_attempts(
    store: Store, app: App, submit: Submit, make_worker: Callable[..., Worker]
) -> None:
    async def stored_logs(op_id: str, at_least: int) -> bool:
        op = await store.get(op_id)
        return op is not None and len(op.logs) >= at_least

    @app.operation("test.runaway", max_attempts=2, retry_backoff=0.01)
    async def runaway(ctx: Any, data: dict[str, Any]) -> None:
        for batch in range(3):  # three flushes, each waited for
            for i in range(6):
                ctx.log(f"attempt {ctx.attempt} line {batch}.{i}")
                ctx.add_error("Broken", f"attempt {ctx.attempt} error {batch}.{i}")
            if ctx.attempt == 1:
                await eventually(lambda b=batch: stored_logs(ctx.operation_id, 6 * (b + 1)))
        if ctx.attempt == 1:
            raise RetryableError("try again")

    op = await submit("test.runaway")
    await make_worker(entry_caps=EntryCaps(logs=25, errors=4)).start()
    done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED_WITH_WARNINGS and done.attempt == 2

    handler_logs = [e.message for e in done.logs if "line" in e.message]
    assert handler_logs[:18] == [f"attempt 1 line {b}.{i}" for b in range(3) for i in range(6)]
    markers = [e.message for e in done.logs if "truncated" in e.message]
    assert len(markers) == 1
    assert len(done.logs) <= 25 + 1 + 2  # the cap, the marker, the worker's own retry notes
    assert 0 < sum("attempt 2" in m for m in handler_logs) < 18  # the second attempt was cut

    codes = [e.code for e in done.errors]
    assert codes[:4] == ["Broken"] * 4 and codes.count("ErrorsTruncated") == 1
    assert [e.message for e in done.errors][:4] == [f"attempt 1 error 0.{i}" for i in range(4)]
