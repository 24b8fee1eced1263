"""Server-sent events: one operation's changes, or every change matching filters, resumable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Collection
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from longrun.api.events import Change, ChangeHub, Subscription, sse_frame
from longrun.api.routes_operations import Scope, ServiceDep
from longrun.api.schemas import ErrorBody
from longrun.model import Operation, Status
from longrun.model.clock import from_micros
from longrun.service import validate_compartment_id

__all__ = ["RETRY_MILLISECONDS", "router"]

router = APIRouter(tags=["events"])

RETRY_MILLISECONDS = 2000  # how long an EventSource waits before it reconnects
EVENT_STREAM = "text/event-stream"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_RESPONSES: dict[int | str, dict[str, object]] = {
    s: {"model": ErrorBody} for s in (400, 404, 410, 429)
}
_RESPONSES[200] = {"content": {EVENT_STREAM: {}}, "description": "a stream of `operation` events"}

LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)]


def _hub(request: Request) -> ChangeHub:
    hub: ChangeHub = request.app.state.events
    return hub


def _client(request: Request) -> str:
    """Whose stream budget this is: the key or token with auth on, else the address (every
    caller is the same anonymous admin then, so the principal cannot tell them apart)."""
    caller: str | None = getattr(request.state, "caller", None)
    if caller is not None:
        return caller
    return f"ip:{request.client.host}" if request.client else "ip:?"


_KEEPALIVE = b": keep-alive\n\n"
_LAGGING = b'event: lagging\ndata: {"reconnect":true}\n\n'


async def _stream(
    hub: ChangeHub,
    sub: Subscription,
    frame: Callable[[Change], bytes],
    *,
    first: bytes = b"",
    until_terminal: bool = False,
) -> AsyncIterator[bytes]:
    """The stream's body: whatever is pending at each wake goes out as one write."""
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode() + first
        while True:
            if not sub.pending and not sub.closed:
                try:  # a timeout scope, not wait_for: that makes a task per wake on 3.11
                    async with asyncio.timeout(hub.keepalive):
                        await sub.wake.wait()
                except TimeoutError:
                    yield _KEEPALIVE
                    continue
            frames = []
            for change in sub.take():
                frames.append(frame(change))
                if until_terminal and change.operation.is_terminal:
                    yield b"".join(frames)
                    return
            if frames:
                yield b"".join(frames)
            if sub.closed:
                if sub.lagging:  # the reader fell behind: it reconnects with Last-Event-ID
                    yield _LAGGING
                return
    finally:
        hub.unsubscribe(sub)


def _streaming(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type=EVENT_STREAM, headers=_HEADERS)


def _after_version(last_event_id: str | None, op_id: str) -> int:
    if not last_event_id:
        return 0
    found, _, version = last_event_id.rpartition(":")
    return int(version) if found == op_id and version.isdigit() else 0


@router.get(
    "/v1/operations/{op_id:operation_id}/events",
    response_class=StreamingResponse,
    responses=_RESPONSES,
    summary="Stream an operation's changes until it ends (server-sent events)",
)
async def operation_events(
    request: Request,
    op_id: str,
    service: ServiceDep,
    scope: Scope,
    last_event_id: LastEventId = None,
) -> Response:
    """Each change is an ``operation`` event whose id is ``<operation id>:<version>``; the
    stream ends after the terminal state. Reconnecting with ``Last-Event-ID`` skips what was
    seen; 204 when the operation had already ended at that version."""
    hub = _hub(request)
    seen = _after_version(last_event_id, op_id)
    sub = hub.subscribe(_client(request), op_id=op_id)
    try:
        op = await service.get(op_id, scope)
    except BaseException:
        hub.unsubscribe(sub)
        raise
    if op.version <= seen:
        sub.sent[op.id] = seen
        if op.is_terminal:
            hub.unsubscribe(sub)
            return Response(status_code=204)
    else:
        sub.offer(Change(op, op.to_json(), hub.cursor))

    return _streaming(_stream(hub, sub, _operation_frame, until_terminal=True))


def _operation_frame(change: Change) -> bytes:
    return change.operation_frame


def _feed_frame(change: Change) -> bytes:
    return change.feed_frame


def _matcher(
    compartments: Collection[str] | None,
    statuses: Collection[Status] | None,
    types: Collection[str] | None,
) -> Callable[[Operation], bool]:
    def match(op: Operation) -> bool:
        return (
            (compartments is None or op.compartment_id in compartments)
            and (statuses is None or op.status in statuses)
            and (types is None or op.operation_type in types)
        )

    return match


def _wanted(requested: list[str] | None, scope: Collection[str] | None) -> set[str] | None:
    for cid in requested or ():
        validate_compartment_id(cid)
    wanted = set(requested) if requested else None
    if scope is not None:
        wanted = set(scope) & wanted if wanted is not None else set(scope)
    return wanted


@router.get(
    "/v1/events",
    response_class=StreamingResponse,
    responses=_RESPONSES,
    summary="Stream every change of the operations matching the filters (server-sent events)",
)
async def events(
    request: Request,
    scope: Scope,
    compartment_id: Annotated[list[str] | None, Query(alias="compartmentId")] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    operation_type: Annotated[list[str] | None, Query(alias="operationType")] = None,
    last_event_id: LastEventId = None,
) -> Response:
    """A ``ready`` event first, then an ``operation`` event per change; every id is a feed
    position. Reconnecting with ``Last-Event-ID`` first replays what moved since that position
    (a version may come twice; keep the highest ``version`` of each operation). ``status``
    matches the status an operation has now, so a change out of it is not sent."""
    hub = _hub(request)
    match = _matcher(
        _wanted(compartment_id, scope),
        set(status) if status else None,
        set(operation_type) if operation_type else None,
    )
    sub = hub.subscribe(_client(request), match=match)
    try:
        if last_event_id and last_event_id.isdigit():
            await hub.catch_up(sub, from_micros(int(last_event_id)))
    except BaseException:
        hub.unsubscribe(sub)
        raise
    ready = sse_frame("ready", str(hub.cursor), json.dumps({"cursor": hub.cursor}))
    return _streaming(_stream(hub, sub, _feed_frame, first=ready))
