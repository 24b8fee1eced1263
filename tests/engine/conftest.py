"""Worker tests run on the real SQLite store in a temp dir; they wait for conditions, never sleep."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import LostWorkerPolicy, Operation, Status, SystemClock, new_id
from longrun.store import Store, open_store
from longrun.store.base import NewOperation


async def eventually(
    predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, interval: float = 0.01
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path}/engine.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so that handlers which ignore cancels end and their threads exit."""
    event = threading.Event()
    yield event
    event.set()


Submit = Callable[..., Awaitable[Operation]]


@pytest.fixture
def submit(store: Store, app: App) -> Submit:
    """Submit an ACCEPTED operation of a registered type, with that type's rules."""

    async def do(operation_type: str, input: Any = None, **fields: Any) -> Operation:  # noqa: A002
        op_type = app.get(operation_type)
        now = SystemClock().now() if "clock" not in fields else fields.pop("clock").now()
        op = Operation(
            id=new_id(),
            operation_type=operation_type,
            compartment_id=fields.pop("compartment_id", "c1"),
            status=Status.ACCEPTED,
            input=op_type.input_to_json(op_type.validate_input(input)),
            time_accepted=now,
            last_action_time=now,
            max_attempts=op_type.max_attempts,
            **fields,
        )
        new = NewOperation(
            op,
            lost_worker_policy=LostWorkerPolicy(op_type.lost_worker_policy),
            retry_backoff=op_type.retry_backoff,
            timeout=op_type.timeout,
        )
        return (await store.submit(new)).operation

    return do


@pytest.fixture
async def make_worker(store: Store, app: App) -> AsyncIterator[Callable[..., Worker]]:
    """Build workers with fast test timings; every started one is stopped at teardown."""
    workers: list[Worker] = []

    def build(**options: Any) -> Worker:
        settings: dict[str, Any] = {
            "slots": 4,
            "lease_seconds": 3.0,
            "flush_interval": 0.02,
            "poll_interval": 0.1,
            "reaper_interval": 0.1,
            **options,
        }
        worker = Worker(store, app, **settings)
        workers.append(worker)
        return worker

    yield build
    for worker in workers:
        await worker.stop(grace=0)


async def final(store: Store, op_id: str, timeout: float = 10.0) -> Operation:
    """The operation once it reached a terminal status."""

    async def done() -> Operation | None:
        op = await store.get(op_id)
        return op if op is not None and op.status.is_terminal else None

    result: Operation = await eventually(done, timeout)
    return result
