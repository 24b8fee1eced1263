"""The asynchronous client: a thin shell that sends what ``_wire`` builds through ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from longrun.client import _poll as poll
from longrun.client import _replies as replies
from longrun.client import _wire as wire
from longrun.client._poll import WaitPlan
from longrun.client._stream import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RECONNECTS, StreamPlan
from longrun.client._sync import DEFAULT_URL
from longrun.client._wire import OperationTypeInfo, Page, Request, Unreachable
from longrun.model import LogEntry, Operation, OperationErrorInfo, Resource, Status

__all__ = ["AsyncClient"]


class AsyncClient:
    """Talk to a longrun server: submit, read, list, cancel and wait for operations.

    Args:
        base_url: where the server listens.
        timeout: seconds for one HTTP exchange (a long poll adds its own bound to it).
        transport: an httpx transport, e.g. to reach an app in-process.
        headers: extra headers sent with every request (e.g. ``Authorization``).
        poll_interval: seconds between polls when the server gives no ``Retry-After``.
        stream: follow the event stream in ``wait``/``watch`` (False: always poll).
        max_reconnects: stream reconnects in a row without a new event before polling instead.
        stream_idle_timeout: seconds without a byte (not even a keep-alive) that end a stream.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float | None = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        poll_interval: float = poll.DEFAULT_POLL_INTERVAL,
        stream: bool = True,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
        stream_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._long_poll = True
        self._use_stream = stream
        self._max_reconnects = max_reconnects
        self._stream_idle_timeout = stream_idle_timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers=wire.merge_headers(
                {"User-Agent": wire.USER_AGENT, "Accept": "application/json"}, headers
            ),
        )

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return str(self._http.base_url)

    async def _send(self, request: Request) -> httpx.Response:
        try:
            return await self._http.request(
                request.method,
                request.path,
                params=tuple(request.params),
                json=request.json,
                headers=request.headers or None,
                timeout=wire.timeout_for(request, self._timeout),
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {exc}") from exc

    # -------------------------------------------------------------------------------- verbs

    async def submit(
        self,
        operation_type: str,
        input: Any = None,  # noqa: A002 - the wire's own word
        *,
        compartment_id: str | None = None,
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
        deadline: datetime | None = None,
        max_attempts: int | None = None,
        parent_id: str | None = None,
    ) -> Operation:
        """Submit an operation; returns it as ACCEPTED (or the first one, on an idempotent replay)."""
        request = wire.build_submit(
            operation_type,
            input,
            compartment_id=compartment_id,
            idempotency_key=idempotency_key,
            not_before=not_before,
            deadline=deadline,
            max_attempts=max_attempts,
            parent_id=parent_id,
        )
        return replies.parse_operation(await self._send(request))

    async def get(self, operation_id: str) -> Operation:
        """The operation as it stands now."""
        return replies.parse_operation(await self._send(wire.build_get(operation_id)))

    async def cancel(self, operation_id: str) -> Operation:
        """Ask to cancel; a queued operation is CANCELED at once, a running one goes CANCELING."""
        return replies.parse_operation(await self._send(wire.build_cancel(operation_id)))

    async def hold(self, operation_id: str, reason: str | None = None) -> Operation:
        """Keep an ACCEPTED operation from starting until it is released."""
        return replies.parse_operation(await self._send(wire.build_hold(operation_id, reason)))

    async def release(self, operation_id: str) -> Operation:
        """Let an ON_HOLD operation start."""
        return replies.parse_operation(await self._send(wire.build_release(operation_id)))

    async def delete(self, operation_id: str) -> None:
        """Delete a terminal operation; its id then answers Gone."""
        replies.raise_for_error(await self._send(wire.build_delete(operation_id)))

    async def list_page(
        self,
        *,
        compartment_id: str | Iterable[str] | None = None,
        status: Status | str | Iterable[Status | str] | None = None,
        operation_type: str | Iterable[str] | None = None,
        parent_id: str | None = None,
        accepted_after: datetime | None = None,
        accepted_before: datetime | None = None,
        order: str | None = None,
        limit: int | None = None,
        page: str | None = None,
    ) -> Page[Operation]:
        """One page of operations and the token of the next one."""
        request = wire.build_list(
            compartment_id=compartment_id,
            status=status,
            operation_type=operation_type,
            parent_id=parent_id,
            accepted_after=accepted_after,
            accepted_before=accepted_before,
            order=order,
            limit=limit,
            page=page,
        )
        return replies.parse_page(await self._send(request), Operation.from_dict)

    async def list(
        self, *, page_size: int | None = None, **filters: Any
    ) -> AsyncIterator[Operation]:
        """Every operation that matches the filters of ``list_page``, across all pages."""
        token: str | None = None
        while True:
            page = await self.list_page(limit=page_size, page=token, **filters)
            for item in page.items:
                yield item
            token = poll.follow(token, page)
            if token is None:
                return

    async def _subresource(
        self, operation_id: str, kind: str, page_size: int | None
    ) -> AsyncIterator[Any]:
        token: str | None = None
        while True:
            request = wire.build_subresource(operation_id, kind, limit=page_size, page=token)
            page = replies.parse_page(await self._send(request), replies.ITEM_MODELS[kind])
            for item in page.items:
                yield item
            token = poll.follow(token, page)
            if token is None:
                return

    def logs(self, operation_id: str, *, page_size: int | None = None) -> AsyncIterator[LogEntry]:
        """Every log entry of the operation, oldest first."""
        return self._subresource(operation_id, "logs", page_size)

    def errors(
        self, operation_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[OperationErrorInfo]:
        """Every error of the operation."""
        return self._subresource(operation_id, "errors", page_size)

    def resources(
        self, operation_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[Resource]:
        """Every resource the operation touched."""
        return self._subresource(operation_id, "resources", page_size)

    async def operation_types(self) -> builtins.list[OperationTypeInfo]:
        """The operation types the server accepts."""
        return replies.parse_operation_types(await self._send(wire.build_operation_types()))

    # -------------------------------------------------------------------------------- polls

    def _stream_plan(self, operation_id: str, timeout: float) -> StreamPlan:
        return StreamPlan(
            operation_id,
            timeout,
            max_reconnects=self._max_reconnects,
            idle_timeout=self._stream_idle_timeout,
        )

    async def _stream(self, plan: StreamPlan) -> AsyncIterator[Operation]:
        """Each state the event stream sends; resumes as the plan says, stops when it falls back.

        Every await is cut at the bound (an in-process transport ignores httpx's timeouts)."""
        while (request := plan.next_request()) is not None:
            timeout = httpx.Timeout(self._timeout, read=plan.read_timeout())
            built = self._http.build_request(
                request.method, request.path, headers=request.headers, timeout=timeout
            )
            try:
                response = await asyncio.wait_for(
                    self._http.send(built, stream=True), plan.remaining()
                )
                try:
                    async for operation in self._read_stream(plan, response):
                        yield operation
                finally:
                    await response.aclose()
            except (TimeoutError, httpx.TimeoutException):
                plan.ended(timed_out=True)
            except httpx.TransportError:
                plan.ended()
            await asyncio.sleep(plan.delay())
        self._use_stream = not plan.unavailable

    @staticmethod
    async def _read_stream(plan: StreamPlan, response: httpx.Response) -> AsyncIterator[Operation]:
        if not plan.accepts(response):
            await response.aread()
            plan.refused(response)
            return
        chunks = response.aiter_text()
        while not (plan.done or plan.fallback or plan.remaining() <= 0):
            try:
                text = await asyncio.wait_for(anext(chunks), plan.read_timeout())
            except StopAsyncIteration:
                break
            for operation in plan.feed(text):
                yield operation
        plan.ended()

    async def wait(self, operation_id: str, timeout: float = 300.0) -> Operation:
        """Block until the operation is terminal; WaitTimeout when it is not within ``timeout``.

        Follows the event stream; polls (``:wait``, then ``GET`` with ``Retry-After``) when the
        server has none or it keeps breaking."""
        if self._use_stream:
            plan = self._stream_plan(operation_id, timeout)
            async for _ in self._stream(plan):
                pass
            if plan.done and plan.last is not None:
                return plan.last
            if not plan.fallback:
                raise plan.expired()
            timeout = plan.remaining()
        polls = WaitPlan(
            operation_id, timeout, long_poll=self._long_poll, poll_interval=self._poll_interval
        )
        while (request := polls.next_request()) is not None:
            operation = polls.handle(await self._send(request))
            self._long_poll = polls.long_poll
            if operation is not None and operation.is_terminal:
                return operation
            await asyncio.sleep(polls.delay())
        raise polls.expired()

    async def watch(
        self, operation_id: str, *, interval: float = 0.5, timeout: float = 86400.0
    ) -> AsyncIterator[Operation]:
        """Each new state of the operation until it is terminal: from the event stream, or by
        polling every ``interval`` seconds (or the server's ``Retry-After``) without one."""
        last: Operation | None = None
        if self._use_stream:
            plan = self._stream_plan(operation_id, timeout)
            async for operation in self._stream(plan):
                if poll.state_changed(last, operation):
                    last = operation
                    yield operation
            if plan.done:
                return
            if not plan.fallback:
                raise plan.expired()
            timeout = plan.remaining()
        polls = WaitPlan(operation_id, timeout, long_poll=False, poll_interval=interval)
        while (request := polls.next_request()) is not None:
            state = polls.handle(await self._send(request))
            if state is not None:
                if poll.state_changed(last, state):
                    last = state
                    yield state
                if state.is_terminal:
                    return
            await asyncio.sleep(polls.delay())
        raise polls.expired()

    # ------------------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
