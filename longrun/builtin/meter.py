"""Byte and item progress for built-in handlers: thread-safe, with cancel checks and a throttle."""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["Meter", "Stopped"]


class Meter:
    """Counts bytes and items for ``ctx.progress``; each tick checks for a cancel (and throttles).

    ``ctx`` is the handler's Context; calls may come from several threads at once.
    """

    def __init__(
        self,
        ctx: Any,
        bytes_total: int,
        items_total: int,
        throttle: int | None = None,
        **properties: Any,
    ) -> None:
        self.ctx = ctx
        self.bytes_total = bytes_total
        self.items_total = items_total
        self.bytes_done = 0
        self.items_done = 0
        self.throttle = throttle
        self.stop = threading.Event()  # set when a sibling thread failed: the others end too
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.ctx.progress(
            0.0,
            bytes_done=0,
            bytes_total=bytes_total,
            items_done=0,
            items_total=items_total,
            **properties,
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def tick(self, moved: int) -> None:
        """``moved`` more bytes; raises OperationCancelled on a cancel, sleeps when throttled."""
        with self._lock:
            self.bytes_done += moved
            done = self.bytes_done
        self._report()
        if self.stop.is_set():
            raise Stopped()
        self.ctx.check_cancelled()
        if self.throttle:
            ahead = done / self.throttle - self.elapsed
            if ahead > 0:
                self.ctx.sleep_sync(ahead)

    def item(self, count: int = 1) -> None:
        """``count`` more items done."""
        with self._lock:
            self.items_done += count
        self._report()
        self.ctx.check_cancelled()

    def set(self, **properties: Any) -> None:
        """Type-specific progress properties."""
        self.ctx.progress(**properties)

    def _report(self) -> None:
        total = max(self.bytes_total, self.bytes_done)
        self.ctx.progress(
            bytes_done=self.bytes_done,
            bytes_total=total,
            items_done=self.items_done,
            items_total=self.items_total,
        )


class Stopped(Exception):
    """Another thread of the same operation failed; this one stops."""
