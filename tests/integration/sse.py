"""Helpers of the event-stream tests: a real uvicorn server in the test's loop, an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support import free_port as _free_port

__all__ = ["Event", "EventReader", "serve_app"]


@dataclass
class Event:
    """One server-sent event."""

    event: str = "message"
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class EventReader:
    """Reads events off a streaming response, with a timeout on each wait."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        # hold this object while the stream is read: once collected, its line iterator is
        # closed, which closes the response and so the connection (the server sees a disconnect)
        self._lines = response.aiter_lines()
        self.comments: list[str] = []
        self.ended = False

    async def next(self, timeout: float = 10.0) -> Event | None:
        """The next event (comments are collected on the side); None when the stream ends."""
        return await asyncio.wait_for(self._next(), timeout)

    async def comment(self, timeout: float = 10.0) -> str:
        """The next comment line (a keep-alive), skipping events."""
        return await asyncio.wait_for(self._comment(), timeout)

    async def _comment(self) -> str:
        count = len(self.comments)
        while len(self.comments) == count:
            if await self._next(stop_at_comment=True) is None:
                raise AssertionError("the stream ended without a comment")
        return self.comments[-1]

    async def _next(self, stop_at_comment: bool = False) -> Event | None:
        current = Event()
        has_field = False
        async for line in self._lines:
            if line == "":
                if has_field and current.data:
                    return current
                current, has_field = Event(), False
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                self.comments.append(value)
                if stop_at_comment:
                    return current
            elif name == "event":
                current.event, has_field = value, True
            elif name == "id":
                current.id, has_field = value, True
            elif name == "data":
                current.data += value
                has_field = True
        self.ended = True
        return None

    async def until(self, check: Any, timeout: float = 15.0) -> Event:
        """The first ``operation`` event whose payload satisfies ``check``."""

        async def scan() -> Event:
            while True:
                event = await self._next()
                if event is None:
                    raise AssertionError("the stream ended before the condition held")
                if event.event == "operation" and check(event.json()):
                    return event

        return await asyncio.wait_for(scan(), timeout)


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on a free port in this loop; yield its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("uvicorn did not start within 5 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        app.state.events.shutdown()  # open streams would hold a graceful shutdown forever
        server.should_exit = True
        await asyncio.wait_for(task, 15)
