"""A request body limit as pure ASGI middleware: 413 in the error shape before anything is done."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longrun.api.errors import error_response
from longrun.model import PayloadTooLarge

__all__ = ["BodyLimitMiddleware"]


class _TooLarge(Exception):
    """Raised into the app when the streamed body passes the limit."""


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: by Content-Length at once, else by counting the stream.

    When the stream passes the limit, whatever the app tries to answer is dropped and the 413
    goes out instead, so a handler that caught the read error cannot answer something else.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is larger than {self.max_bytes} bytes", target="body"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await error_response(self._error())(scope, receive, send)
            return
        guard = _Guard(receive, send, self.max_bytes)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if not guard.exceeded:
                raise
        if guard.exceeded and not guard.started:
            await error_response(self._error())(scope, receive, send)


class _Guard:
    """Counts the body of one request; once over the limit, silences the app's answer."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self._max_bytes = max_bytes
        self._received = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._max_bytes:
                self.exceeded = True
                raise _TooLarge()
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded:
            return
        self.started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
