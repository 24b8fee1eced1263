"""Fixtures of the in-process API tests: a real SQLite file, the app, an httpx client on ASGI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from longrun.api import create_app
from longrun.config import Settings
from longrun.engine.registry import App
from longrun.model import Clock, ManualClock, Operation, Status
from longrun.service import Service
from longrun.store import Store
from longrun.store.base import ListQuery, Outcome, Update
from tests.store.conftest import ENGINES, store_url

__all__ = ["Api", "EchoInput", "make_test_app", "running_api", "settings_for", "wait_until"]

MAX_BODY = 2048


class EchoInput(BaseModel):
    """The input of test.echo."""

    message: str = Field(min_length=1)
    count: int = Field(1, ge=0, le=10)


def make_test_app() -> App:
    """Two operation types: one with an input model, one that takes any object."""
    app = App()

    @app.operation("test.echo", input=EchoInput, max_attempts=2, timeout=30.0)
    async def echo(ctx: Any, data: EchoInput) -> dict[str, Any]:
        """Echo the message back."""
        return {"echo": data.message * data.count}

    @app.operation("test.free")
    def free(ctx: Any, data: dict[str, Any]) -> None:
        """Take any object."""

    @app.operation("test.until_canceled")
    async def until_canceled(ctx: Any, data: dict[str, Any]) -> None:
        """Report progress and log until canceled (bounded: 30 s)."""
        ctx.log("started")
        for step in range(3000):
            if ctx.cancelled:
                return
            ctx.progress(percent=min(99.0, step / 10))
            await asyncio.sleep(0.01)

    return app


@dataclass
class Api:
    """Everything a test needs: the app, its client, its store and its service."""

    app: FastAPI
    client: httpx.AsyncClient
    store: Store
    service: Service
    clock: Clock

    async def submit(self, **body: Any) -> httpx.Response:
        """POST /v1/operations with test.echo defaults."""
        headers = {}
        if "idempotency_key" in body:
            headers["Idempotency-Key"] = body.pop("idempotency_key")
        payload = {"operationType": "test.echo", "input": {"message": "hi"}, **body}
        return await self.client.post("/v1/operations", json=payload, headers=headers)

    async def all_ops(self) -> list[Operation]:
        """Every operation in the store, read directly."""
        return await self.store.list(ListQuery(limit=10_000))

    async def run(
        self,
        op_id: str,
        status: Status = Status.SUCCEEDED,
        update: Update | None = None,
        result: Any = None,
    ) -> Operation:
        """Claim the operation on the real store as a worker would, and end it with ``status``."""
        now = self.service.clock.now()
        op = await self.store.get(op_id)
        assert op is not None
        claims = await self.store.claim("test-worker", [op.operation_type], now, 30.0, 100)
        claim = next(c for c in claims if c.operation.id == op_id)
        if update is not None:
            await self.store.heartbeat(op_id, claim.lease_id, now, 30.0, update)
        return await self.store.finish(
            op_id, claim.lease_id, now, Outcome(status=status, result=result)
        )

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
        """Wait for ``check`` to hold, at most ``timeout`` seconds."""
        await wait_until(check, timeout)

    async def start(self, op_id: str) -> str:
        """Claim the operation (IN_PROGRESS); return the lease id."""
        op = await self.store.get(op_id)
        assert op is not None
        claims = await self.store.claim(
            "test-worker", [op.operation_type], self.service.clock.now(), 30.0, 100
        )
        return next(c.lease_id for c in claims if c.operation.id == op_id)


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        if loop.time() > end:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of a test server on a fresh SQLite file in ``tmp_path``."""
    values: dict[str, Any] = {
        "db": f"sqlite:///{tmp_path}/api.db",
        "embedded_worker": False,
        "max_body_bytes": MAX_BODY,
    }
    values.update(overrides)
    return Settings(**values)


async def running_api(app: FastAPI, **transport_options: Any) -> AsyncIterator[Api]:
    """Run the app's lifespan and yield it with a client (ASGITransport skips the lifespan)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, **transport_options)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            service = app.state.service
            yield Api(app, http, app.state.store, service, service.clock)


@pytest.fixture
def clock() -> ManualClock:
    """The server's clock: real time at the start, moved only by the test."""
    return ManualClock()


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store of every engine (PostgreSQL when LONGRUN_TEST_POSTGRES is set)."""
    with store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def api(tmp_path: Path, clock: ManualClock, db_url: str) -> AsyncIterator[Api]:
    """The app on a fresh store, without a worker."""
    app = create_app(settings_for(tmp_path, db=db_url), app=make_test_app(), clock=clock)
    async for running in running_api(app):
        yield running


@pytest.fixture
def api_factory(
    tmp_path: Path, clock: ManualClock, db_url: str
) -> Callable[..., contextlib.AbstractAsyncContextManager[Api]]:
    """Build and run an app with settings overrides: ``async with api_factory(public_url=...)``."""

    @contextlib.asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[Api]:
        op_app = overrides.pop("app", None) or make_test_app()
        settings = settings_for(tmp_path, **{"db": db_url, **overrides})
        app = create_app(settings, app=op_app, clock=clock)
        async for running in running_api(app):
            yield running

    return build


@pytest.fixture
async def worker_api(tmp_path: Path, db_url: str) -> AsyncIterator[Api]:
    """The app with its embedded worker, the real clock and the test types."""
    settings = settings_for(
        tmp_path, db=db_url, embedded_worker=True, worker_slots=2, poll_interval=0.05
    )
    app = create_app(settings, app=make_test_app())
    async for running in running_api(app):
        yield running


@pytest.fixture
async def lenient_api(tmp_path: Path, clock: ManualClock, db_url: str) -> AsyncIterator[Api]:
    """Like ``api``, but server errors come back as responses instead of being raised."""
    app = create_app(settings_for(tmp_path, db=db_url), app=make_test_app(), clock=clock)
    async for running in running_api(app, raise_app_exceptions=False):
        yield running
