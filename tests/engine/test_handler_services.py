"""ctx.purge_terminal_operations: an async handler awaits it, a thread calls the _sync face;
both purge only the operation's own compartment, and misuse gets a clear error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import Status
from longrun.store import Store
from tests.engine.conftest import Submit, final

MakeWorker = Callable[..., Worker]


def _register(app: App) -> None:
    @app.operation("purge.async")
    async def purge_async(ctx: Context, data: dict[str, Any]) -> list[str]:
        return [tomb.id for tomb in await ctx.purge_terminal_operations(int(data["limit"]))]

    @app.operation("purge.thread")
    def purge_thread(ctx: Context, data: dict[str, Any]) -> list[str]:
        return [tomb.id for tomb in ctx.purge_terminal_operations_sync(int(data["limit"]))]

    @app.operation("purge.sync_on_loop")
    async def purge_sync_on_loop(ctx: Context, data: dict[str, Any]) -> None:
        ctx.purge_terminal_operations_sync()

    @app.operation("noop")
    async def noop(ctx: Context, data: Any) -> None:
        """Ends at once."""


async def _ended(submit: Submit, store: Store, compartment: str) -> str:
    op = await submit("noop", compartment_id=compartment)
    return (await final(store, op.id)).id


async def test_both_faces_purge_the_own_compartment_in_batches(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    _register(app)
    async with make_worker():
        own = sorted([await _ended(submit, store, "c1") for _ in range(3)])
        elsewhere = await _ended(submit, store, "c2")
        first = await final(store, (await submit("purge.async", {"limit": 2})).id)
        second = await final(store, (await submit("purge.thread", {"limit": 5})).id)
    assert (first.status, first.result) == (Status.SUCCEEDED, own[:2])
    # the first purge ended meanwhile: it is terminal now, so the second purge takes it too
    assert (second.status, second.result) == (Status.SUCCEEDED, sorted([own[2], first.id]))
    for op_id in [*own, first.id]:
        assert await store.get(op_id) is None and await store.get_tombstone(op_id) is not None
    assert await store.get(elsewhere) is not None and await store.get(second.id) is not None


async def test_bad_limit_and_the_sync_face_on_the_loop_are_refused(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    _register(app)
    async with make_worker():
        zero = await final(store, (await submit("purge.async", {"limit": 0})).id)
        on_loop = await final(store, (await submit("purge.sync_on_loop")).id)
    assert zero.status is Status.FAILED and zero.errors[-1].code == "InvalidInput"
    assert on_loop.status is Status.FAILED
    assert on_loop.errors[-1].code == "ConfigurationError"
    assert "await the method" in on_loop.errors[-1].message
