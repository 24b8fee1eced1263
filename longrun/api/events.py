"""The change hub: one task per process follows the store's change feed and fans it out to streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from longrun.model import Operation, RateLimited
from longrun.model.clock import from_micros, to_micros
from longrun.store.base import Store

__all__ = ["Change", "ChangeHub", "Subscription", "install_shutdown_signals", "sse_frame"]

logger = logging.getLogger(__name__)

Match = Callable[[Operation], bool]


@dataclass(frozen=True)
class Change:
    """One new version of an operation, serialized once for every subscriber, and framed once
    for each kind of stream (a thousand streams of one operation send the same bytes)."""

    operation: Operation
    data: str
    cursor: int  # the hub's feed position (µs of last_action_time) once this change was read

    @cached_property
    def operation_frame(self) -> bytes:
        """The event as one operation's stream sends it: its id is ``<id>:<version>``."""
        op = self.operation
        return sse_frame("operation", f"{op.id}:{op.version}", self.data)

    @cached_property
    def feed_frame(self) -> bytes:
        """The event as a filtered stream sends it: its id is the feed position."""
        return sse_frame("operation", str(self.cursor), self.data)


def sse_frame(kind: str, event_id: str, data: str) -> bytes:
    """One server-sent event (``data`` is one line of JSON)."""
    return f"event: {kind}\nid: {event_id}\ndata: {data}\n\n".encode()


@dataclass(eq=False)
class Subscription:
    """What one stream waits on: the latest pending change of each operation, coalesced.

    Pending changes are keyed by operation id, so a slow reader skips stale versions instead of
    growing a queue; past ``max_pending`` distinct operations it is closed as lagging."""

    client: str
    op_id: str | None = None
    match: Match | None = None
    max_pending: int = 10_000
    pending: dict[str, Change] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # operation id -> last version sent
    closed: bool = False
    lagging: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, op: Operation) -> bool:
        if self.op_id is not None:
            return op.id == self.op_id
        return self.match is None or self.match(op)

    def offer(self, change: Change) -> None:
        """Queue ``change`` unless this stream already sent that version or a newer one."""
        op = change.operation
        if self.closed or self.sent.get(op.id, 0) >= op.version:
            return
        queued = self.pending.get(op.id)
        if queued is not None and queued.operation.version >= op.version:
            return
        self.pending[op.id] = change
        if len(self.pending) > self.max_pending:
            self.lagging = True
            self.closed = True
        self.wake.set()

    def take(self) -> list[Change]:
        """Every pending change, oldest first, marked as sent."""
        changes = list(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        for change in changes:
            self.sent[change.operation.id] = change.operation.version
        if len(self.sent) > 4 * self.max_pending:  # a long global stream: forget the oldest half
            for key in list(self.sent)[: len(self.sent) // 2]:
                del self.sent[key]
        return changes

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class ChangeHub:
    """Follows ``store.changed_since`` after each ``store.wait_for_change`` and fans out.

    The feed cursor is the newest ``last_action_time`` read. A pass reads from the cursor on; at
    most every ``sweep_interval`` seconds a pass rereads ``lookback`` seconds behind it instead,
    because a write stamped before the cursor may commit after it was read (a busy writer queue,
    another process). Versions already published are skipped, so sweeps never duplicate."""

    def __init__(
        self,
        store: Store,
        *,
        now: Callable[[], datetime],
        lookback: float = 2.0,
        batch: int = 500,
        min_interval: float = 0.02,
        max_streams_per_client: int = 32,
        max_pending: int = 10_000,
        keepalive: float = 15.0,
        sweep_interval: float = 0.5,
    ) -> None:
        self.store = store
        self.now = now
        self.lookback = timedelta(seconds=lookback)
        self.batch = batch
        self.min_interval = min_interval
        self.max_streams_per_client = max_streams_per_client
        self.max_pending = max_pending
        self.keepalive = keepalive
        self.sweep_interval = sweep_interval
        self._last_sweep = 0.0
        self.cursor = to_micros(now())
        self.passes = 0
        self.published = 0
        self._subs: set[Subscription] = set()
        self._by_op: dict[str, set[Subscription]] = {}  # streams of one operation, by its id
        self._filtered: set[Subscription] = set()  # streams of every operation matching filters
        self._per_client: dict[str, int] = {}
        self._published: dict[str, int] = {}  # id -> the version last published
        self._moved: dict[str, datetime] = {}  # id -> its last_action_time then
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @property
    def is_closed(self) -> bool:
        return self._closed

    def subscribe(
        self, client: str, op_id: str | None = None, match: Match | None = None
    ) -> Subscription:
        """A new stream of changes; RateLimited past ``max_streams_per_client`` for ``client``."""
        if self._closed:
            raise RateLimited("the server is shutting down")
        if self._per_client.get(client, 0) >= self.max_streams_per_client:
            raise RateLimited(
                f"at most {self.max_streams_per_client} open event streams per client"
            )
        sub = Subscription(client, op_id, match, max_pending=self.max_pending)
        self._subs.add(sub)
        if op_id is not None:
            self._by_op.setdefault(op_id, set()).add(sub)
        else:
            self._filtered.add(sub)
        self._per_client[client] = self._per_client.get(client, 0) + 1
        if self._task is None or self._task.done():  # idle until now: follow the feed from now on
            self.cursor = max(self.cursor, to_micros(self.now()))
            self._task = asyncio.create_task(self._run(), name="longrun-events-hub")
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        if sub in self._subs:
            self._subs.discard(sub)
            self._filtered.discard(sub)
            same = self._by_op.get(sub.op_id or "")
            if same is not None:
                same.discard(sub)
                if not same:
                    del self._by_op[sub.op_id or ""]
            left = self._per_client.get(sub.client, 1) - 1
            if left > 0:
                self._per_client[sub.client] = left
            else:
                self._per_client.pop(sub.client, None)

    def shutdown(self) -> None:
        """Close every stream (they end cleanly) and refuse new ones."""
        self._closed = True
        for sub in list(self._subs):
            sub.close()

    async def stop(self) -> None:
        """Shut down and wait for the hub task to end."""
        self.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def catch_up(self, sub: Subscription, since: datetime) -> None:
        """Offer ``sub`` every matching operation that moved at or after ``since - lookback``."""
        start = since - self.lookback
        while True:
            ops = await self.store.changed_since(start, self.batch)
            for op in ops:
                if sub.wants(op):
                    cursor = max(self.cursor, to_micros(op.last_action_time))
                    sub.offer(Change(op, op.to_json(), cursor))
            if len(ops) < self.batch or ops[-1].last_action_time <= start:
                return
            start = ops[-1].last_action_time

    # the one task -----------------------------------------------------------------------------
    async def _run(self) -> None:
        # one waiter stays parked on the store while a pass reads, so no change slips between
        # a pass and the next wait, and the store's watcher is not restarted every pass
        dirty = asyncio.Event()
        waiter = asyncio.create_task(self._wait_for_changes(dirty), name="longrun-events-wait")
        loop = asyncio.get_running_loop()
        try:
            while self._subs and not self._closed:
                started = loop.time()
                dirty.clear()
                try:
                    await self._pass()
                except Exception:  # a store outage: keep the streams open and try again
                    logger.warning("events hub: reading changes failed", exc_info=True)
                    await asyncio.sleep(1.0)
                if not self._subs or self._closed:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(dirty.wait(), 5.0)
                # coalesce bursts: at most one pass per min_interval
                rest = self.min_interval - (loop.time() - started)
                if rest > 0:
                    await asyncio.sleep(rest)
        finally:
            waiter.cancel()

    async def _wait_for_changes(self, dirty: asyncio.Event) -> None:
        while True:
            if await self.store.wait_for_change(5.0):
                dirty.set()

    async def _pass(self) -> None:
        self.passes += 1
        start = from_micros(self.cursor)
        clock = asyncio.get_running_loop().time()
        if clock - self._last_sweep >= self.sweep_interval:
            self._last_sweep = clock
            start -= self.lookback
        while True:
            # rows at versions already published are skipped unread: a sweep costs little
            page = await self.store.changes_since(start, self.batch, self._published)
            for op in page.operations:
                self._publish(op)
            last = page.last_action_time
            if page.rows < self.batch or last is None or last <= start:
                break
            start = last
        horizon = from_micros(self.cursor) - 2 * self.lookback
        if len(self._moved) > 1000:
            self._moved = {k: t for k, t in self._moved.items() if t >= horizon}
            self._published = {k: self._published[k] for k in self._moved}

    def _publish(self, op: Operation) -> None:
        if self._published.get(op.id, -1) >= op.version:
            return
        self._published[op.id] = op.version
        self._moved[op.id] = op.last_action_time
        self.cursor = max(self.cursor, to_micros(op.last_action_time))
        change: Change | None = None
        for sub in (*self._by_op.get(op.id, ()), *self._filtered):
            if sub.wants(op):
                change = change or Change(op, op.to_json(), self.cursor)
                sub.offer(change)
        self.published += 1


def install_shutdown_signals(hub: ChangeHub) -> Callable[[], None]:
    """Close the streams as soon as SIGINT/SIGTERM arrives, before the server waits for open
    connections to finish (uvicorn does, and a stream never finishes by itself); chains the
    handlers in place and returns a function that puts them back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(hub.shutdown)
        previous[signum](signum, frame)

    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if not callable(current):  # default, ignored or foreign: leave it alone
            continue
        previous[sig] = current
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, prev in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, prev)

    return restore
