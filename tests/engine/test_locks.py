"""Resource locks through a real worker: a conflicting operation waits in ACCEPTED, or is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import Conflict, Status
from longrun.service import Service
from longrun.store import Store
from tests.engine.conftest import Submit, eventually, final

MakeWorker = Callable[..., Worker]


def _register(app: App, gate: threading.Event, policy: str = "wait") -> None:
    @app.operation("touch", locks=lambda data: [f"path:{data['path']}"], lock_policy=policy)  # type: ignore[arg-type]
    def touch(ctx: Context, data: dict[str, Any]) -> str:
        if data.get("hold"):
            while not gate.wait(0.02):
                ctx.check_cancelled()
        return str(data["path"])


async def test_a_conflicting_operation_waits_naming_the_holder(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store, release: threading.Event
) -> None:
    _register(app, release)
    holder = await submit("touch", {"path": "/a", "hold": True})
    async with make_worker():
        await eventually(lambda: _holds(store, holder.id, "path:/a"))
        waiter = await submit("touch", {"path": "/a"})
        other = await submit("touch", {"path": "/b"})
        assert (await final(store, other.id)).status is Status.SUCCEEDED  # no conflict
        line = f"waiting for path:/a, held by operation {holder.id}"

        async def waits() -> bool:
            op = await store.get(waiter.id)
            return op is not None and op.status is Status.ACCEPTED and line in _messages(op)

        await eventually(waits, timeout=10)
        release.set()
        done = await final(store, waiter.id)
    assert done.status is Status.SUCCEEDED
    assert done.attempt == 1  # waiting is not an attempt
    assert _messages(done).count(line) == 1  # one line however many times it looked


async def test_a_refusing_type_answers_conflict_at_submit(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store, release: threading.Event
) -> None:
    _register(app, release, policy="refuse")
    service = Service(store, app)
    holder, _ = await service.submit("touch", {"path": "/a", "hold": True})
    async with make_worker():
        await eventually(lambda: _holds(store, holder.id, "path:/a"))
        with pytest.raises(Conflict) as refused:
            await service.submit("touch", {"path": "/a"})
        assert refused.value.http_status == 409 and holder.id in refused.value.message
        release.set()
        await final(store, holder.id)
        later, _ = await service.submit("touch", {"path": "/a"})
        assert (await final(store, later.id)).status is Status.SUCCEEDED


async def _holds(store: Store, op_id: str, key: str) -> bool:
    """The operation runs and has taken ``key`` (it takes its locks just after its claim)."""
    return await store.lock_holders([key]) == {key: op_id}


def _messages(op: Any) -> list[str]:
    return [entry.message for entry in op.logs]
