"""The client's event-stream logic without I/O: an incremental SSE parser and when to stream or poll."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from longrun.client._replies import error_from_response
from longrun.client._wire import Request, op_path
from longrun.model import InvalidInput, Operation, WaitTimeout

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_RECONNECTS",
    "EVENT_STREAM",
    "EventParser",
    "ServerEvent",
    "StreamPlan",
    "build_events",
]

EVENT_STREAM = "text/event-stream"
DEFAULT_IDLE_TIMEOUT = 45.0  # the server sends a keep-alive every 15 s; three missed = dead stream
DEFAULT_MAX_RECONNECTS = 3  # reconnects in a row without a new event before polling instead
_REFUSED = frozenset({400, 401, 403, 410})  # replies that polling would not change
_ROUTE_MISSING = frozenset({404, 405, 501})


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched server-sent event."""

    event: str
    data: str
    id: str | None = None


class EventParser:
    """Incremental ``text/event-stream`` parser (the WHATWG rules): feed text, get whole events.

    Lines may end in CRLF, LF or CR and may be split anywhere across ``feed`` calls.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self.last_event_id: str | None = None
        self.retry: float | None = None  # seconds, from the last ``retry:`` field

    def feed(self, text: str) -> list[ServerEvent]:
        """Every event completed by ``text``."""
        self._buffer += text
        events: list[ServerEvent] = []
        while (line := self._next_line()) is not None:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _next_line(self) -> str | None:
        buffer = self._buffer
        cut = min((i for i in (buffer.find("\r"), buffer.find("\n")) if i >= 0), default=-1)
        if cut < 0:
            return None
        if buffer[cut] == "\r":
            if cut + 1 == len(buffer):
                return None  # a LF may follow in the next chunk
            end = cut + 2 if buffer[cut + 1] == "\n" else cut + 1
        else:
            end = cut + 1
        self._buffer = buffer[end:]
        return buffer[:cut]

    def _line(self, line: str) -> ServerEvent | None:
        if line == "":
            return self._dispatch()
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None  # comments (empty name) and unknown fields are ignored

    def _dispatch(self) -> ServerEvent | None:
        data, kind = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerEvent(kind, "\n".join(data), self.last_event_id)


def build_events(operation_id: str, last_event_id: str | None = None) -> Request:
    """``GET /v1/operations/{id}/events``, resuming after ``last_event_id`` when given."""
    headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return Request("GET", op_path(operation_id, "/events"), headers=headers)


class StreamPlan:
    """The decisions of one bounded stream of an operation's states: open, read, resume or poll.

    The shells open what ``next_request`` builds, read it when ``accepts`` says it is a stream
    (else read the body and call ``refused``), ``feed`` it the text they read and call ``ended``
    when a connection ends before the terminal state. After ``max_reconnects`` failed connections
    in a row, or when the server has no stream (404/405/501, 429, 5xx, a body that is no event
    stream, a proxy that holds the bytes back), ``fallback`` turns true: poll for the rest.
    """

    def __init__(
        self,
        operation_id: str,
        timeout: float,
        *,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout < 0:
            raise InvalidInput("timeout must not be negative", target="timeout")
        self.operation_id = operation_id
        self.timeout = timeout
        self.max_reconnects = max_reconnects
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._deadline = clock() + timeout
        self._parser = EventParser()
        self._failures = 0
        self._got_bytes = False
        self._delay = 0.0
        self.connections = 0
        self.unavailable = False  # this server (or its proxy) has no usable stream: remember it
        self.fallback = False
        self.last: Operation | None = None

    @property
    def done(self) -> bool:
        """True once the terminal state was read."""
        return self.last is not None and self.last.is_terminal

    @property
    def last_event_id(self) -> str | None:
        """The id a reconnect resumes after."""
        return self._parser.last_event_id

    def remaining(self) -> float:
        """Seconds left before the bound."""
        return max(0.0, self._deadline - self._clock())

    def next_request(self) -> Request | None:
        """The next stream to open; None when done, when polling takes over or past the bound."""
        if self.done or self.fallback or self.remaining() <= 0:
            return None
        self.connections += 1
        self._got_bytes = False
        self._delay = 0.0
        return build_events(self.operation_id, self._parser.last_event_id)

    def read_timeout(self) -> float:
        """How long one read may wait: the idle bound, never past the wait's own bound."""
        return max(0.01, min(self.idle_timeout, self.remaining()))

    def delay(self) -> float:
        """Seconds to pause before reconnecting (never past the bound)."""
        return min(self._delay, self.remaining())

    def accepts(self, response: httpx.Response) -> bool:
        """True when ``response`` is an event stream to read (else read it and call ``refused``)."""
        content_type = response.headers.get("Content-Type", "")
        return response.status_code == 200 and content_type.startswith(EVENT_STREAM)

    def refused(self, response: httpx.Response) -> None:
        """After a reply that is no stream: raise a refusal that polling would not change, or poll
        (204: terminal at the version seen, a GET reads it; 404/405/501: no stream on this
        server; 429, 5xx or another body: not now)."""
        if response.status_code in _REFUSED:
            raise error_from_response(response)
        self.unavailable = response.status_code in _ROUTE_MISSING
        self.fallback = True

    def feed(self, text: str) -> list[Operation]:
        """The new states that ``text`` completes, in order."""
        if text:
            self._got_bytes = True
        states: list[Operation] = []
        for event in self._parser.feed(text):
            if event.event != "operation" or self.done or self.fallback:
                continue
            try:
                operation: Operation = Operation.from_dict(json.loads(event.data))
            except (ValueError, ValidationError):
                self.fallback = True  # a garbled stream (a proxy rewrote it): poll instead
                break
            states.append(operation)
            self.last = operation
            self._failures = 0
        return states

    def ended(self, *, timed_out: bool = False) -> None:
        """A connection ended before the terminal state: plan a resume, or give up on streaming."""
        if self.done or self.fallback:
            return
        if timed_out and not self._got_bytes and self.remaining() > 0:
            self.fallback = self.unavailable = True  # nothing came through: a buffering proxy
            return
        self._failures += 1
        if self._failures > self.max_reconnects:
            self.fallback = True
            return
        hint = self._parser.retry if self._parser.retry is not None else 1.0
        self._delay = min(hint, 0.1 * 2 ** (self._failures - 1))

    def expired(self) -> WaitTimeout:
        """The error to raise when the bound is reached before a terminal state."""
        status = self.last.status.value if self.last is not None else "unknown"
        return WaitTimeout(
            f"operation {self.operation_id} is still {status} after {self.timeout:g}s",
            target=self.operation_id,
            details=[{"code": "CurrentStatus", "message": status}],
        )
