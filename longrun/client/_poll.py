"""The client's polling decisions without I/O: what to send next, how long to pause, when to stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from longrun.client._replies import parse_operation, retry_after
from longrun.client._wire import Page, Request, build_get, build_wait
from longrun.model import InternalError, InvalidInput, Operation, WaitTimeout

__all__ = ["DEFAULT_POLL_INTERVAL", "WaitPlan", "follow", "state_changed"]

DEFAULT_POLL_INTERVAL = 1.0  # seconds between GETs when the server gives no Retry-After
_MIN_DELAY = 0.05  # never spin: the shortest pause between two polls


def follow(previous: str | None, page: Page[Any]) -> str | None:
    """The token of the page after ``page`` (None when done); a repeated token is a server bug."""
    if page.next_page is not None and page.next_page == previous:
        raise InternalError("the server sent the same page token twice", target="page")
    return page.next_page


def state_changed(before: Operation | None, after: Operation) -> bool:
    """True when ``after`` tells the watcher something ``before`` did not."""
    if before is None:
        return True
    return (
        before.version != after.version
        or before.status != after.status
        or before.last_action_time != after.last_action_time
        or before.percent_complete != after.percent_complete
        or before.progress != after.progress
    )


class WaitPlan:
    """The decisions of one bounded wait: what to send next, how long to pause, when to give up.

    It long-polls ``:wait`` while the server offers it and falls back to ``GET`` (honouring
    ``Retry-After``) when the server does not know the route. Transient replies (429, 503) are
    retried within the bound. No I/O: the shells send, sleep and feed the replies back.
    """

    def __init__(
        self,
        operation_id: str,
        timeout: float,
        *,
        long_poll: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        honour_retry_after: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout < 0:
            raise InvalidInput("timeout must not be negative", target="timeout")
        self.operation_id = operation_id
        self.timeout = timeout
        self.long_poll = long_poll
        self.poll_interval = max(_MIN_DELAY, poll_interval)
        self.honour_retry_after = honour_retry_after
        self._clock = clock
        self._deadline = clock() + timeout
        self._sent_at = 0.0
        self._sent_long_poll: float | None = None
        self._delay = 0.0
        self._sent_any = False
        self.last: Operation | None = None

    def remaining(self) -> float:
        """Seconds left before the bound."""
        return max(0.0, self._deadline - self._clock())

    def next_request(self) -> Request | None:
        """The next request to send, or None when the bound is reached (then call ``expired``)."""
        remaining = self.remaining()
        if self._sent_any and remaining <= 0:
            return None
        self._sent_any = True
        self._sent_at = self._clock()
        if self.long_poll:
            request = build_wait(self.operation_id, remaining)
            self._sent_long_poll = request.long_poll
            return request
        self._sent_long_poll = None
        return build_get(self.operation_id)

    def handle(self, response: httpx.Response) -> Operation | None:
        """Read one reply: the operation (terminal or not), or None when it is worth another try.

        Raises the mapped error for a reply that will not get better by waiting.
        """
        status = response.status_code
        if self._sent_long_poll is not None and status in (404, 405, 501):
            # the route may be missing (an older server); a GET tells a missing operation apart
            self.long_poll = False
            self._delay = 0.0
            return None
        if status in (429, 503):
            self._delay = self._pause(retry_after(response))
            return None
        operation = parse_operation(response)
        self.last = operation
        self._delay = 0.0 if operation.is_terminal else self._next_delay(response)
        return operation

    def _next_delay(self, response: httpx.Response) -> float:
        if self._sent_long_poll is not None:
            held = self._clock() - self._sent_at
            if held >= self._sent_long_poll / 2:
                return 0.0  # the server held the reply: ask again at once
        return self._pause(retry_after(response))

    def _pause(self, hint: float | None) -> float:
        if hint is None or not self.honour_retry_after:
            wanted = self.poll_interval
        else:
            wanted = max(_MIN_DELAY, hint)
        return min(wanted, self.remaining())

    def delay(self) -> float:
        """Seconds to pause before the next request (never past the bound)."""
        return min(self._delay, self.remaining())

    def expired(self) -> WaitTimeout:
        """The error to raise when the bound is reached before a terminal state."""
        status = self.last.status.value if self.last is not None else "unknown"
        return WaitTimeout(
            f"operation {self.operation_id} is still {status} after {self.timeout:g}s",
            target=self.operation_id,
            details=[{"code": "CurrentStatus", "message": status}],
        )
