"""One claimed operation on a worker: start its handler, watch cancel/timeout/abort, say how it ended."""

from __future__ import annotations

import asyncio
import inspect
import time
from concurrent.futures import Executor
from typing import Any

from longrun.engine.context import Context
from longrun.engine.outcome import Ending, Rules
from longrun.engine.registry import Handler, OperationType
from longrun.store.base import Claim

__all__ = ["LEASE_LOST", "SHUTDOWN", "Run", "is_async_handler", "start_handler", "supervise"]

LEASE_LOST = "lease_lost"
SHUTDOWN = "shutdown"


class Run:
    """The worker's record of one claimed operation: context, lease, handler and signals."""

    def __init__(self, claim: Claim, op_type: OperationType, ctx: Context, rules: Rules) -> None:
        self.claim = claim
        self.op_type = op_type
        self.ctx = ctx
        self.rules = rules
        self.op_id = claim.operation.id
        self.lease_id = claim.lease_id
        self.write_lock = asyncio.Lock()  # a heartbeat and the finish never overlap
        self.closed = False  # nothing more is written for this attempt
        self.last_beat = time.monotonic()  # the last heartbeat the store took
        self.news_due = self.last_beat  # when news may next be written: a slot on its own grid
        self.cancel_requested = False  # the store said CANCELING
        self.aborted: str | None = None  # LEASE_LOST or SHUTDOWN
        self.handler: asyncio.Future[Any] | None = None
        self.task: asyncio.Task[None] | None = None
        # what supervise awaits: resolved by the handler's end, a timer, a cancel or an abort
        self._waiter: asyncio.Future[None] | None = None
        self._wake_on_cancel = True

    def request_cancel(self) -> None:
        """The store says CANCELING: tell the handler, start the grace period."""
        if not self.cancel_requested:
            self.cancel_requested = True
            self.ctx.signal_cancel()
            if self._wake_on_cancel:
                self._wake()

    def abort(self, reason: str) -> None:
        """Stop supervising now: the lease is lost, or the worker is shutting down."""
        if self.aborted is None:
            self.aborted = reason
            self._wake()
        self.ctx.signal_cancel()

    def _wake(self, *_: object) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def is_async_handler(handler: Handler) -> bool:
    """True for ``async def`` handlers (and objects with an ``async def __call__``)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


_KINDS: dict[Any, bool] = {}  # handler -> is_async_handler(handler), asked once per handler


def _is_async(handler: Handler) -> bool:
    try:
        return _KINDS[handler]
    except KeyError:
        if len(_KINDS) > 1024:  # many short-lived apps (tests): stay bounded
            _KINDS.clear()
        kind = _KINDS[handler] = is_async_handler(handler)
        return kind
    except TypeError:  # an unhashable callable object
        return is_async_handler(handler)


def start_handler(run: Run, value: Any, executor: Executor) -> asyncio.Future[Any]:
    """Start ``handler(ctx, value)``: a task for ``async def``, a thread of ``executor`` else."""
    handler = run.op_type.handler
    future: asyncio.Future[Any]
    if _is_async(handler):
        future = asyncio.ensure_future(handler(run.ctx, value))
    else:
        future = asyncio.get_running_loop().run_in_executor(executor, handler, run.ctx, value)
    future.add_done_callback(_retrieve)  # an abandoned handler's late exception is not an error
    run.handler = future
    return future


async def supervise(run: Run, handler: asyncio.Future[Any]) -> Ending:
    """Wait for the handler, enforcing the timeout and the cancel grace; never raises.

    The Ending has ``abandoned`` set when the handler outlived its grace and ``shutdown`` when
    the worker stopped first; ``run.aborted`` tells the caller not to write on a lost lease.
    """
    loop = asyncio.get_running_loop()
    ending = Ending()
    timeout = run.rules.timeout
    deadline = loop.time() + timeout if timeout else None
    await _wait(run, handler, deadline, on_cancel=True)
    if not handler.done() and run.aborted is None:
        ending.timed_out = not run.cancel_requested
        run.ctx.signal_cancel()
        await _wait(run, handler, loop.time() + run.rules.cancel_grace, on_cancel=False)
    ending.cancel_requested = run.cancel_requested
    if handler.done():
        if handler.cancelled():
            ending.error = asyncio.CancelledError()
        elif (error := handler.exception()) is not None:
            ending.error = error
        else:
            ending.value = handler.result()
    elif run.aborted == SHUTDOWN:
        ending.shutdown = True
    else:
        ending.abandoned = True
    return ending


async def _wait(
    run: Run, handler: asyncio.Future[Any], deadline: float | None, *, on_cancel: bool
) -> None:
    """Until the handler is done, the run is aborted (or asked to cancel, when ``on_cancel``),
    or the deadline (loop time) passes: one future and callbacks, no task per signal."""
    if handler.done() or run.aborted is not None:
        return
    if on_cancel and run.cancel_requested:
        return
    loop = asyncio.get_running_loop()
    run._waiter = waiter = loop.create_future()
    run._wake_on_cancel = on_cancel
    handler.add_done_callback(run._wake)
    timer = None if deadline is None else loop.call_at(deadline, run._wake)
    try:
        await waiter
    finally:
        run._waiter = None
        handler.remove_done_callback(run._wake)
        if timer is not None:
            timer.cancel()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
