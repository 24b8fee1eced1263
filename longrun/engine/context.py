"""What a handler sees: cheap in-memory progress, logs, resources and cooperative cancellation."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any

from longrun.engine.caps import Cap, EntryCaps, Verdict
from longrun.engine.handler_services import HandlerServices, Tombstone
from longrun.model import (
    ActionType,
    Clock,
    InvalidInput,
    LogEntry,
    LogLevel,
    LongrunError,
    Operation,
    OperationErrorInfo,
    Progress,
    Resource,
    Status,
    SystemClock,
)
from longrun.store.base import Update

__all__ = ["Context", "EntryCaps", "OperationCancelled", "Tombstone"]

_EWMA_ALPHA = 0.3  # weight of the newest rate sample in the ETA estimate
_LEVELS = {"WARN": LogLevel.WARNING, **{level.value: level for level in LogLevel}}


class OperationCancelled(LongrunError):
    """The operation was canceled while it ran."""

    http_status = 409


class Context(HandlerServices):
    """The handler's view of one attempt; safe to call from the event loop or a handler thread.

    Handler side: ``progress``, ``log``, ``warn``, ``add_resource``, ``set_resource_location``,
    ``set_result``, ``add_error``, ``cancelled``, ``check_cancelled``, ``sleep``; with a worker
    also ``spawn``, ``join_children`` and ``purge_terminal_operations`` (``_sync`` in threads).
    Engine side: ``take_update``, ``put_back``, ``signal_cancel``, ``detach``.
    """

    def __init__(
        self, operation: Operation, *, clock: Clock | None = None, caps: EntryCaps | None = None
    ) -> None:
        self.operation = operation
        self.clock: Clock = clock or SystemClock()
        caps = caps or EntryCaps()  # counted from what earlier flushes and attempts stored
        self._log_cap = Cap(caps.logs, len(operation.logs))
        self._error_cap = Cap(caps.errors, len(operation.errors))
        self._resource_cap = Cap(caps.resources, len(operation.resources))
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._waiters: set[asyncio.Future[None]] = set()
        self._detached = False
        self.cancel_observed = False  # the handler saw the cancel (read it, or got the raise)
        # progress, coalesced; percent None means nothing is known yet
        self._percent: float | None = None
        self._bytes_done: int | None = None
        self._bytes_total: int | None = None
        self._items_done: int | None = None
        self._items_total: int | None = None
        self._properties: dict[str, Any] = {}
        self._dirty = False
        self._percent_dirty = False
        # appended since the last take
        self._logs: list[LogEntry] = []
        self._errors: list[OperationErrorInfo] = []
        self._resources: list[Resource] = []
        self._location_dirty = False
        # the whole attempt
        self.resource_location: str | None = None
        self.result: Any = None
        self.warnings: list[str] = []
        self.error_count = 0
        # the ETA: an EWMA of the percent rate, sampled at each take
        self._started = self.clock.now()
        self._sample: tuple[datetime, float] = (self._started, 0.0)
        self._rate: float | None = None
        self._eta: datetime | None = None
        # sub-operations: the worker sets ``family``; join_children fills child_statuses
        self.family: Any = None
        self.children: list[str] = []
        self.child_statuses: dict[str, Status] = {}
        # the loop the engine runs on, so that a handler thread can reach the store through it
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    # identity ---------------------------------------------------------------------------------
    @property
    def operation_id(self) -> str:
        return self.operation.id

    @property
    def operation_type(self) -> str:
        return self.operation.operation_type

    @property
    def compartment_id(self) -> str:
        return self.operation.compartment_id

    @property
    def attempt(self) -> int:
        return self.operation.attempt

    @property
    def detached(self) -> bool:
        """True once the engine stopped listening (abandoned, lease lost, finished)."""
        return self._detached

    @property
    def percent_complete(self) -> float:
        """The highest percent reported in this attempt (0 when none)."""
        return self._percent or 0.0

    @property
    def has_warnings(self) -> bool:
        """True when ``warn`` or ``add_error`` was called: success becomes SUCCEEDED_WITH_WARNINGS."""
        return bool(self.warnings) or self.error_count > 0

    # progress ---------------------------------------------------------------------------------
    def progress(
        self,
        percent: float | None = None,
        *,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        items_done: int | None = None,
        items_total: int | None = None,
        **properties: Any,
    ) -> None:
        """Report progress; kept in memory and written with the next flush. Percent never drops."""
        if self._detached:
            return
        with self._lock:
            if bytes_done is not None:
                self._bytes_done = bytes_done
            if bytes_total is not None:
                self._bytes_total = bytes_total
            if items_done is not None:
                self._items_done = items_done
            if items_total is not None:
                self._items_total = items_total
            if properties:
                self._properties.update(properties)
            if percent is None:
                percent = self._derived_percent()
            if percent is not None and (self._percent is None or percent > self._percent):
                self._percent = 100.0 if percent > 100.0 else (0.0 if percent < 0.0 else percent)
                self._percent_dirty = True
            self._dirty = True

    def _derived_percent(self) -> float | None:
        if self._bytes_total and self._bytes_done is not None:
            return 100.0 * self._bytes_done / self._bytes_total
        if self._items_total and self._items_done is not None:
            return 100.0 * self._items_done / self._items_total
        return None

    # logs, errors, resources, result ---------------------------------------------------------
    def log(self, message: str, level: LogLevel | str = LogLevel.INFO) -> None:
        """Append a log line, stamped by the engine's clock."""
        if self._detached:
            return
        entry = LogEntry(timestamp=self.clock.now(), level=_level(level), message=str(message))
        with self._lock:
            verdict = self._log_cap.admit()
            if verdict is Verdict.MARK:
                entry = LogEntry(
                    timestamp=entry.timestamp,
                    level=LogLevel.WARNING,
                    message=self._log_cap.marker("log entries"),
                )
            if verdict is not Verdict.DROP:
                self._logs.append(entry)

    def warn(self, message: str) -> None:
        """Log a WARNING; a successful end then becomes SUCCEEDED_WITH_WARNINGS."""
        if self._detached:
            return
        if len(self.warnings) < self._log_cap.limit:  # in memory too, nothing grows unbounded
            self.warnings.append(str(message))
        self.log(message, LogLevel.WARNING)

    def add_error(
        self,
        code: str,
        message: str,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record a structured error without failing; a successful end then carries warnings."""
        if self._detached:
            return
        now = self.clock.now()
        info = OperationErrorInfo(
            code=code, message=message, target=target, details=details or [], timestamp=now
        )
        with self._lock:
            self.error_count += 1
            verdict = self._error_cap.admit()
            if verdict is Verdict.MARK:
                marker = self._error_cap.marker("errors")
                info = OperationErrorInfo(code="ErrorsTruncated", message=marker, timestamp=now)
            if verdict is not Verdict.DROP:
                self._errors.append(info)

    def add_resource(
        self,
        entity_type: str,
        action_type: ActionType | str,
        identifier: str,
        entity_uri: str | None = None,
    ) -> None:
        """Record a resource this operation created, updated, deleted or relates to (past the
        cap on resources, the first ones are kept and one log line says so)."""
        if self._detached:
            return
        try:
            action = ActionType(action_type)
        except ValueError:
            raise InvalidInput(
                f"unknown action type {action_type!r}", target="action_type"
            ) from None
        resource = Resource(
            entity_type=entity_type,
            action_type=action,
            identifier=identifier,
            entity_uri=entity_uri,
        )
        with self._lock:
            verdict = self._resource_cap.admit()
            if verdict is Verdict.KEEP:
                self._resources.append(resource)
        if verdict is Verdict.MARK:  # the marker of resources is a log line: it has no entity
            self.log(self._resource_cap.marker("resources"), LogLevel.WARNING)

    def set_resource_location(self, location: str) -> None:
        """Where the result of the operation lives (an id or a path)."""
        if self._detached:
            return
        with self._lock:
            self.resource_location = location
            self._location_dirty = True

    def set_result(self, value: Any) -> None:
        """The result of the operation, when the handler does not return it."""
        if not self._detached:
            self.result = value

    # cancellation ------------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once a cancel (or a timeout) was signaled: stop soon and clean up."""
        if self._cancel.is_set():
            self.cancel_observed = True
            return True
        return False

    @property
    def cancel_signaled(self) -> bool:
        """Engine side: whether a cancel was signaled, without counting as the handler seeing it."""
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise OperationCancelled when a cancel was signaled."""
        if self.cancelled:
            raise OperationCancelled()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise OperationCancelled at once when a cancel is signaled."""
        self.check_cancelled()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        try:
            if self._cancel.is_set():  # signaled between the check and the registration
                future.set_result(None)
            await asyncio.wait({future}, timeout=max(0.0, seconds))
        finally:
            self._waiters.discard(future)
            future.cancel()
        self.check_cancelled()

    def sleep_sync(self, seconds: float) -> None:
        """For plain ``def`` handlers: block, but raise OperationCancelled when canceled."""
        self.check_cancelled()
        if self._cancel.wait(max(0.0, seconds)):
            self.check_cancelled()

    # engine side -------------------------------------------------------------------------------
    def signal_cancel(self) -> None:
        """Tell the handler to stop (from any thread); wakes ``sleep`` at once."""
        self._cancel.set()
        for future in list(self._waiters):
            future.get_loop().call_soon_threadsafe(_resolve, future)

    def detach(self) -> None:
        """Ignore every further call: the engine no longer writes for this attempt."""
        self._detached = True
        self.signal_cancel()

    def take_update(self, now: datetime | None = None) -> Update | None:
        """What changed since the last take (latest progress, new logs/errors/resources), or None."""
        with self._lock:
            if not (
                self._dirty or self._logs or self._errors or self._resources or self._location_dirty
            ):
                return None
            update = Update(logs=self._logs, errors=self._errors, resources=self._resources)
            self._logs, self._errors, self._resources = [], [], []
            if self._location_dirty:
                update.resource_location = self.resource_location
                self._location_dirty = False
            if self._dirty:
                update.progress = Progress(
                    bytes_done=self._bytes_done,
                    bytes_total=self._bytes_total,
                    items_done=self._items_done,
                    items_total=self._items_total,
                    properties=dict(self._properties),
                )
                update.percent_complete = self._percent
                self._dirty = False
            percent_moved, self._percent_dirty = self._percent_dirty, False
            percent = self._percent
        if percent_moved and percent is not None:
            self._estimate(now or self.clock.now(), percent)
        update.estimated_completion_time = self._eta
        return update

    def put_back(self, update: Update) -> None:
        """Return an update that could not be written, so that the next take carries it again."""
        with self._lock:
            self._logs[:0] = update.logs
            self._errors[:0] = update.errors
            self._resources[:0] = update.resources
            if update.progress is not None or update.percent_complete is not None:
                self._dirty = True
            if update.resource_location is not None:
                self._location_dirty = True

    @property
    def estimated_completion_time(self) -> datetime | None:
        """The latest ETA computed at a take; None while the rate is unknown."""
        return self._eta

    def _estimate(self, now: datetime, percent: float) -> None:
        last_time, last_percent = self._sample
        elapsed = (now - last_time).total_seconds()
        if elapsed <= 0 or percent <= last_percent:
            return
        rate = (percent - last_percent) / elapsed
        self._rate = (
            rate if self._rate is None else _EWMA_ALPHA * rate + (1 - _EWMA_ALPHA) * self._rate
        )
        self._sample = (now, percent)
        if percent >= 100.0 or self._rate <= 0:
            self._eta = None
        else:
            self._eta = now + timedelta(seconds=(100.0 - percent) / self._rate)


def _level(level: LogLevel | str) -> LogLevel:
    if isinstance(level, LogLevel):
        return level
    try:
        return _LEVELS[str(level).upper()]
    except KeyError:
        raise InvalidInput(f"unknown log level {level!r}", target="level") from None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
