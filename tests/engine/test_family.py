"""Sub-operations in the engine: spawn, aggregated progress, the parent's end, cancel propagation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from longrun.engine.context import Context
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import ConfigurationError, Status, SystemClock
from longrun.store import Store
from longrun.store.base import ListQuery
from longrun.testing import run_handler
from tests.engine.conftest import Submit, eventually, final

MakeWorker = Callable[..., Worker]


def _register(app: App) -> None:
    @app.operation("child")
    async def child(ctx: Context, data: dict[str, Any]) -> int:
        size = int(data["size"])
        if data.get("fail"):
            raise ValueError("child failed")
        if data.get("slow"):
            await ctx.sleep(30)
        ctx.progress(bytes_done=size, bytes_total=size)
        return size

    @app.operation("parent")
    async def parent(ctx: Context, data: dict[str, Any]) -> list[str]:
        ids = [await ctx.spawn("child", kid) for kid in data["kids"]]
        if data.get("join", True):
            await ctx.join_children()
        return ids


async def test_a_parent_aggregates_its_children(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    _register(app)
    op = await submit("parent", {"kids": [{"size": 10}, {"size": 32}], "join": False})
    async with make_worker():
        done = await final(store, op.id)
    assert done.status is Status.SUCCEEDED  # the worker joined for the handler
    kids = await store.list(ListQuery(parent_id=op.id))
    assert sorted(kid.id for kid in kids) == sorted(done.result)
    assert all(kid.status is Status.SUCCEEDED and kid.compartment_id == "c1" for kid in kids)
    assert (done.progress.bytes_done, done.progress.bytes_total) == (42, 42)
    assert (done.progress.items_done, done.progress.items_total) == (2, 2)


async def test_the_parent_follows_its_children(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    _register(app)
    mixed = await submit("parent", {"kids": [{"size": 1}, {"size": 1, "fail": True}]})
    failed = await submit("parent", {"kids": [{"size": 1, "fail": True}]})
    async with make_worker():
        assert (await final(store, mixed.id)).status is Status.SUCCEEDED_WITH_WARNINGS
        assert (await final(store, failed.id)).status is Status.FAILED


async def test_canceling_a_parent_cancels_its_children(
    app: App, submit: Submit, make_worker: MakeWorker, store: Store
) -> None:
    _register(app)
    op = await submit("parent", {"kids": [{"size": 1, "slow": True}] * 2})
    async with make_worker():
        await eventually(lambda: _count(store, op.id, Status.IN_PROGRESS, 2), timeout=10)
        await store.request_cancel(op.id, SystemClock().now())
        done = await final(store, op.id)
        assert done.status is Status.CANCELED
        kids = await store.list(ListQuery(parent_id=op.id))
        assert [kid.status for kid in kids] == [Status.CANCELED] * 2


async def _count(store: Store, parent_id: str, status: Status, n: int) -> bool:
    kids = await store.list(ListQuery(parent_id=parent_id))
    return sum(kid.status is status for kid in kids) == n


def test_spawn_outside_a_worker_says_so() -> None:
    async def handler(ctx: Context, data: Any) -> None:
        await ctx.spawn("child", {})

    run = run_handler(handler)
    assert run.status is Status.FAILED
    assert isinstance(run.error, ConfigurationError)
