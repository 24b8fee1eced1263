"""Client.wait/watch follow the real server's event stream, and poll when it is missing or breaks."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longrun.api import create_app
from longrun.client import AsyncClient, Client
from longrun.config import Settings
from longrun.engine.registry import App
from longrun.model import Status, WaitTimeout
from tests.integration.sse import serve_app

STEPS = (25.0, 50.0, 75.0)


@dataclass
class Gates:
    """The test moves the handler one step at a time: no sleeps, every state observable."""

    loop: asyncio.AbstractEventLoop
    events: dict[str, list[asyncio.Event]] = field(default_factory=dict)

    def open(self, op_id: str, step: int) -> None:
        self.events.setdefault(op_id, [asyncio.Event() for _ in range(len(STEPS) + 1)])[step].set()

    async def passed(self, op_id: str, step: int) -> None:
        gates = self.events.setdefault(op_id, [asyncio.Event() for _ in range(len(STEPS) + 1)])
        await asyncio.wait_for(gates[step].wait(), 20)


def stepped_app(gates: Gates) -> App:
    app = App()

    @app.operation("test.steps")
    async def steps(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
        """Report each step once the test opens its gate."""
        for index, percent in enumerate(STEPS):
            await gates.passed(ctx.operation_id, index)
            ctx.progress(percent=percent)
        await gates.passed(ctx.operation_id, len(STEPS))
        return {"steps": len(STEPS)}

    return app


class Recorder:
    """Counts requests by (method, path) and plays a broken proxy on the events route."""

    def __init__(self, app: ASGIApp, holder: list[Recorder]) -> None:
        self.app = app
        holder.append(self)
        self.count: Counter[tuple[str, str]] = Counter()
        self.last_event_ids: list[str | None] = []
        self.mode = "pass"  # pass | missing | cut_at_once | cut_after_event | buffer

    def events(self, op_id: str) -> int:
        return self.count["GET", f"/v1/operations/{op_id}/events"]

    def polls(self, op_id: str) -> int:
        return (
            self.count["GET", f"/v1/operations/{op_id}"]
            + self.count["GET", f"/v1/operations/{op_id}:wait"]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.count[scope["method"], scope["path"]] += 1
        if not scope["path"].endswith("/events") or self.mode == "pass":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        self.last_event_ids.append(
            headers[b"last-event-id"].decode() if b"last-event-id" in headers else None
        )
        if self.mode == "missing":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b'{"detail":"Not Found"}'})
            return
        await self._broken(scope, receive, send)

    async def _broken(self, scope: Scope, receive: Receive, send: Send) -> None:
        cut = asyncio.Event()
        held: list[Message] = []

        async def guarded_receive() -> Message:
            if cut.is_set():
                return {"type": "http.disconnect"}
            waiter = asyncio.ensure_future(receive())
            stop = asyncio.ensure_future(cut.wait())
            done, _ = await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiter, stop):
                task.cancel()
            return waiter.result() if waiter in done else {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            if cut.is_set():
                return
            body = message.get("body", b"")
            if self.mode == "buffer" and message["type"] == "http.response.body":
                held.append(message)  # a proxy that sends nothing until the end
                return
            if self.mode == "cut_at_once" and body:
                cut.set()
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)
            if self.mode == "cut_after_event" and b"event: operation" in body:
                cut.set()
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        with contextlib.suppress(asyncio.CancelledError):
            await self.app(scope, guarded_receive, guarded_send)


@dataclass
class Server:
    url: str
    recorder: Recorder
    gates: Gates


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A real uvicorn server with its embedded worker, the stepped type and a request recorder."""
    gates = Gates(asyncio.get_running_loop())
    settings = Settings(
        db=f"sqlite:///{tmp_path}/stream.db",
        embedded_worker=True,
        poll_interval=0.05,
        flush_interval=0.05,
    )
    app = create_app(settings, app=stepped_app(gates))
    holder: list[Recorder] = []
    app.add_middleware(Recorder, holder=holder)
    async with serve_app(app) as url:
        yield Server(url, holder[0], gates)


async def _watch_stepping(
    client: AsyncClient, server: Server, op_id: str
) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    async for state in client.watch(op_id, interval=0.05, timeout=30):
        seen.append((state.status.value, state.percent_complete))
        if state.status is Status.IN_PROGRESS:
            done = sum(1 for p in STEPS if p <= state.percent_complete)
            server.gates.open(op_id, done)
    return seen


async def test_watch_yields_every_state_from_the_stream_without_polling(server: Server) -> None:
    async with AsyncClient(server.url, poll_interval=0.05) as client:
        op = await client.submit("test.steps", {})
        seen = await _watch_stepping(client, server, op.id)
    percents = [p for status, p in seen if status == "IN_PROGRESS"]
    assert [p for p in STEPS if p in percents] == list(STEPS), seen
    assert seen[-1] == ("SUCCEEDED", 100.0)
    assert server.recorder.events(op.id) == 1
    assert server.recorder.polls(op.id) == 0


async def test_sync_wait_returns_on_the_terminal_event_without_polling(server: Server) -> None:
    with Client(server.url, poll_interval=0.05) as client:
        op = await asyncio.to_thread(client.submit, "test.steps", {})
        waiting = asyncio.create_task(asyncio.to_thread(client.wait, op.id, 30))
        await _until(lambda: server.recorder.events(op.id) == 1)
        for step in range(len(STEPS) + 1):
            server.gates.open(op.id, step)
        done = await asyncio.wait_for(waiting, 30)
    assert done.status is Status.SUCCEEDED and done.result == {"steps": 3}
    assert server.recorder.events(op.id) == 1 and server.recorder.polls(op.id) == 0


async def test_a_server_without_the_stream_is_polled_and_remembered(server: Server) -> None:
    server.recorder.mode = "missing"
    with Client(server.url, poll_interval=0.05) as client:
        op = await asyncio.to_thread(client.submit, "test.steps", {})
        waiting = asyncio.create_task(asyncio.to_thread(client.wait, op.id, 30))
        await _until(lambda: server.recorder.polls(op.id) >= 1)
        for step in range(len(STEPS) + 1):
            server.gates.open(op.id, step)
        assert (await asyncio.wait_for(waiting, 30)).status is Status.SUCCEEDED
        again = await asyncio.to_thread(client.wait, op.id, 5)
    assert again.status is Status.SUCCEEDED
    assert server.recorder.events(op.id) == 1  # the second wait did not try the stream again


async def test_a_dropped_stream_resumes_with_last_event_id(server: Server) -> None:
    server.recorder.mode = "cut_after_event"
    async with AsyncClient(server.url, poll_interval=0.05, max_reconnects=3) as client:
        op = await client.submit("test.steps", {})
        seen = await _watch_stepping(client, server, op.id)
    versions = [v for v in server.recorder.last_event_ids if v is not None]
    assert server.recorder.last_event_ids[0] is None and versions
    assert all(v.startswith(f"{op.id}:") for v in versions)
    assert [int(v.rpartition(":")[2]) for v in versions] == sorted(
        int(v.rpartition(":")[2]) for v in versions
    )
    assert len(seen) == len(set(seen)) and seen[-1] == ("SUCCEEDED", 100.0)
    assert server.recorder.polls(op.id) == 0


async def test_a_stream_that_keeps_breaking_gives_way_to_polling(server: Server) -> None:
    server.recorder.mode = "cut_at_once"
    async with AsyncClient(server.url, poll_interval=0.05, max_reconnects=2) as client:
        op = await client.submit("test.steps", {})
        waiting = asyncio.create_task(client.wait(op.id, 30))
        await _until(lambda: server.recorder.polls(op.id) >= 1)
        for step in range(len(STEPS) + 1):
            server.gates.open(op.id, step)
        assert (await asyncio.wait_for(waiting, 30)).status is Status.SUCCEEDED
    assert server.recorder.events(op.id) == 3  # the first connection and two reconnects


async def test_a_buffering_proxy_is_noticed_and_polled_through(server: Server) -> None:
    server.recorder.mode = "buffer"
    with Client(server.url, poll_interval=0.05, stream_idle_timeout=0.5) as client:
        op = await asyncio.to_thread(client.submit, "test.steps", {})
        watching = asyncio.create_task(asyncio.to_thread(_collect, client, op.id, server))
        done = await asyncio.wait_for(watching, 30)
    assert done[-1] == "SUCCEEDED"
    assert server.recorder.events(op.id) == 1 and server.recorder.polls(op.id) >= 1


def _collect(client: Client, op_id: str, server: Server) -> list[str]:
    statuses = []
    loop = server.gates.loop
    for state in client.watch(op_id, interval=0.05, timeout=30):
        statuses.append(state.status.value)
        if not state.is_terminal:
            for step in range(len(STEPS) + 1):
                loop.call_soon_threadsafe(server.gates.open, op_id, step)
    return statuses


async def test_wait_keeps_its_bound_on_a_silent_stream(server: Server) -> None:
    async with AsyncClient(server.url, poll_interval=0.05) as client:
        op = await client.submit("test.steps", {})
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(WaitTimeout):
            await client.wait(op.id, 0.5)
        assert loop.time() - started < 3
        for step in range(len(STEPS) + 1):
            server.gates.open(op.id, step)
        assert (await client.wait(op.id, 30)).status is Status.SUCCEEDED


async def _until(check: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
