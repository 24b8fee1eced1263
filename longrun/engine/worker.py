"""The worker: claims operations into slots, runs their handlers, heartbeats, finishes, reaps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from longrun.engine.context import Context, EntryCaps, OperationCancelled
from longrun.engine.counters import Counters
from longrun.engine.family import Family
from longrun.engine.heartbeats import MIN_TICK, TICKS_PER_INTERVAL, Heartbeats, count_lease_lost
from longrun.engine.housekeeping import Housekeeper
from longrun.engine.locking import release_locks, take_locks
from longrun.engine.outcome import Ending, Rules, decide
from longrun.engine.registry import App
from longrun.engine.runner import LEASE_LOST, SHUTDOWN, Run, start_handler, supervise
from longrun.model import (
    Clock,
    ConfigurationError,
    InvalidInput,
    LeaseLost,
    LongrunError,
    Status,
    SystemClock,
    new_id,
)
from longrun.store.base import Beat, Claim, Store, Update

__all__ = ["Counters", "Worker"]

log = logging.getLogger(__name__)

_FINISH_TRIES = 3
_SLOW_CLAIM = 0.25  # of the lease: a claim slower than this renews its leases before running
_STOP_BOUND = 10.0  # seconds stop() waits for a loop or a last finish before cancelling it


class Worker:
    """Runs the handlers of ``app`` for operations in ``store``, up to ``slots`` at a time."""

    def __init__(
        self,
        store: Store,
        app: App,
        *,
        clock: Clock | None = None,
        slots: int = 8,
        lease_seconds: float = 30.0,
        flush_interval: float = 0.2,
        poll_interval: float = 1.0,
        reaper_interval: float = 1.0,
        retention_seconds: float | None = None,
        tombstone_retention_seconds: float | None = None,
        audit_retention_seconds: float | None = None,
        worker_id: str | None = None,
        entry_caps: EntryCaps | None = None,  # logs and errors kept per operation
    ) -> None:
        if slots < 1:
            raise ConfigurationError("a worker needs at least one slot", target="slots")
        for name, value in (
            ("lease_seconds", lease_seconds),
            ("flush_interval", flush_interval),
            ("poll_interval", poll_interval),
            ("reaper_interval", reaper_interval),
        ):
            if value <= 0:
                raise ConfigurationError(f"{name} must be positive", target=name)
        self.store = store
        self.app = app
        self.clock: Clock = clock or SystemClock()
        self.slots = slots
        self.lease_seconds = lease_seconds
        self.flush_interval = flush_interval
        self.entry_caps = entry_caps or EntryCaps()
        self.poll_interval = poll_interval
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"
        self.counters = Counters()
        self.housekeeper = Housekeeper(
            store,
            self.clock,
            interval=reaper_interval,
            retention_seconds=retention_seconds,
            tombstone_retention_seconds=tombstone_retention_seconds,
            audit_retention_seconds=audit_retention_seconds,
        )
        self.family = Family(store, app, self.clock)
        self.heartbeats = Heartbeats(
            store, self.clock, self.family, self.counters, flush_interval, lease_seconds
        )
        self._runs: dict[str, Run] = {}
        # runs whose handler is over and whose last write is on its way: their slots are free,
        # so the next claim joins that write's group commit instead of waiting for it
        self._ending: set[str] = set()
        self._threads: ThreadPoolExecutor | None = None
        self._stopping = asyncio.Event()  # no more claims
        self._closing = asyncio.Event()  # the flush and housekeeping loops end
        self._slot_freed = asyncio.Event()
        self._loops: dict[str, asyncio.Task[None]] = {}

    # lifecycle ---------------------------------------------------------------------------------
    @property
    def running(self) -> frozenset[str]:
        """The ids of the operations in flight on this worker."""
        return frozenset(self._runs)

    @property
    def started(self) -> bool:
        return bool(self._loops)

    async def start(self) -> None:
        """Start the claim, flush and housekeeping loops."""
        if self._loops:
            raise ConfigurationError("the worker is already started")
        self._stopping.clear()
        self._closing.clear()
        self._threads = self._new_threads()
        self._loops = {
            "claim": asyncio.create_task(self._claim_loop(), name="longrun-claim"),
            "flush": asyncio.create_task(self._flush_loop(), name="longrun-flush"),
            "housekeeping": asyncio.create_task(
                self.housekeeper.run(self._closing), name="longrun-housekeeping"
            ),
        }
        log.info("worker %s started with %d slots", self.worker_id, self.slots)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, give running handlers ``grace`` seconds, requeue the rest, end loops."""
        if not self._loops:
            return
        self._stopping.set()
        await _settle([self._loops["claim"]], _STOP_BOUND)
        running = [run.task for run in self._runs.values() if run.task is not None]
        if running:
            await asyncio.wait(running, timeout=max(0.0, grace))
        for run in list(self._runs.values()):
            run.abort(SHUTDOWN)
        leftover = [run.task for run in self._runs.values() if run.task is not None]
        await _settle(leftover, _STOP_BOUND)
        self._closing.set()
        await _settle(list(self._loops.values()), _STOP_BOUND)
        self._loops = {}
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        log.info("worker %s stopped: %s", self.worker_id, self.counters.as_dict())

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # claiming ----------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            self._slot_freed.clear()
            free = self.slots - len(self._runs) + len(self._ending)
            if free <= 0:
                await _first(self._slot_freed, self._stopping, timeout=self.poll_interval)
                continue
            claims = await self._claim(free)
            for claim in claims:
                self._launch(claim)
            if not claims and not self._stopping.is_set():
                await self._idle()

    async def _claim(self, limit: int) -> list[Claim]:
        asked = self.clock.now()
        try:
            claims = await self.store.claim(
                self.worker_id, self.app.names(), asked, self.lease_seconds, limit
            )
        except Exception as exc:  # the loop must outlive a bad moment of the store
            log.warning("claim failed: %s", exc, exc_info=not isinstance(exc, LongrunError))
            await _first(self._stopping, timeout=self.poll_interval)
            return []
        waited = (self.clock.now() - asked).total_seconds()
        if claims and waited > self.lease_seconds * _SLOW_CLAIM:
            return await self._renew_late(claims)
        return claims

    async def _renew_late(self, claims: list[Claim]) -> list[Claim]:
        """A claim that took long (a store outage, a queue for a connection) landed with a lease
        reckoned from when it was asked for, maybe already spent, so the reaper may be handing
        the operation on: renew each lease, fenced, before its handler starts, and leave out the
        ones not renewed (the reaper requeues them), so that no operation runs twice at once."""
        beats = [Beat(c.operation.id, c.lease_id, Update()) for c in claims]
        answers = await self.store.heartbeat_many(beats, self.clock.now(), self.lease_seconds)
        kept = []
        for claim, answer in zip(claims, answers, strict=True):
            if isinstance(answer, Exception):
                log.warning(
                    "left %s: its late claim was not renewed: %s", claim.operation.id, answer
                )
            else:
                kept.append(claim)
        return kept

    async def _idle(self) -> None:
        """Until something may have changed in the store, the worker stops, or poll_interval."""
        change = asyncio.ensure_future(self.store.wait_for_change(self.poll_interval))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([change, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            change.cancel()
        if change.done() and not change.cancelled() and change.exception() is not None:
            log.warning("wait_for_change failed: %s", change.exception())
            await _first(self._stopping, timeout=self.poll_interval)

    def _launch(self, claim: Claim) -> None:
        op = claim.operation
        op_type = self.app.get(op.operation_type)
        rules = Rules(
            attempt=op.attempt,
            max_attempts=op.max_attempts,
            retry_backoff=claim.retry_backoff,
            timeout=claim.timeout if claim.timeout is not None else op_type.timeout,
            cancel_grace=op_type.cancel_grace,
        )
        ctx = Context(op, clock=self.clock, caps=self.entry_caps)
        ctx.family = self.family
        run = Run(claim, op_type, ctx, rules)
        # its own phase within the flush interval: a batch of claims does not write in step
        run.news_due += random.uniform(0, self.flush_interval)
        self.counters.claimed += 1
        self._runs[run.op_id] = run
        run.task = asyncio.create_task(self._run(run), name=f"longrun-op-{run.op_id}")
        if log.isEnabledFor(logging.DEBUG):  # one line per operation: only when asked for
            log.debug("claimed %s (attempt %d)", run.op_id, op.attempt, extra=_extra(run))

    # running -----------------------------------------------------------------------------------
    async def _run(self, run: Run) -> None:
        try:
            try:
                value = run.op_type.validate_input(run.claim.operation.input)
            except InvalidInput as exc:
                await self._finish(run, Ending(error=exc))
                return
            keys = run.op_type.lock_keys(value)
            if keys and not await self._lock(run, keys):
                return
            handler = start_handler(run, value, self._executor())
            ending = await supervise(run, handler)
            if not handler.done():
                self._abandon(run, handler, ending)
            await self._join_children(run, ending)
            self._ending.add(run.op_id)
            self._slot_freed.set()
            if run.aborted != LEASE_LOST:
                await self._finish(run, ending)
            if keys:
                await release_locks(self.store, run.op_id)
        except Exception:
            log.exception("internal error while running %s", run.op_id, extra=_extra(run))
        finally:
            run.ctx.detach()
            run.closed = True
            self._runs.pop(run.op_id, None)
            self._ending.discard(run.op_id)
            self._slot_freed.set()

    async def _lock(self, run: Run, keys: list[str]) -> bool:
        """Take the operation's resource locks; False (and back to ACCEPTED) when it must wait."""
        try:
            return await take_locks(self.store, run, keys, self.clock.now())
        except LeaseLost:
            self._count_lease_lost(run)
            return False

    async def _join_children(self, run: Run, ending: Ending) -> None:
        """A handler that spawned sub-operations and returned without joining them: join here."""
        ctx = run.ctx
        if not ctx.children or ctx.child_statuses or ending.error or ending.abandoned:
            return
        if ending.shutdown or run.aborted is not None:
            return
        try:
            await self.family.join(ctx)
        except OperationCancelled as exc:
            ending.error, ending.cancel_requested = exc, True

    def _abandon(self, run: Run, handler: asyncio.Future[Any], ending: Ending) -> None:
        """Stop listening to a handler that did not stop; free its thread if it has one."""
        run.ctx.detach()
        handler.cancel()  # a task gets CancelledError; a thread cannot be interrupted
        if not isinstance(handler, asyncio.Task) and self._threads is not None:
            # the stuck thread keeps a pool slot busy: give later handlers a fresh pool
            self._threads.shutdown(wait=False)
            self._threads = self._new_threads()
        if ending.abandoned:
            self.counters.abandoned += 1
            log.warning("abandoned the handler of %s", run.op_id, extra=_extra(run))

    async def _finish(self, run: Run, ending: Ending) -> None:
        async with run.write_lock:
            if run.closed:
                return
            run.closed = True
            outcome = decide(run.ctx, ending, run.rules, self.clock.now())
            for attempt in range(1, _FINISH_TRIES + 1):
                try:
                    status = await self.store.finish_status(
                        run.op_id, run.lease_id, self.clock.now(), outcome
                    )
                except LeaseLost:
                    self._count_lease_lost(run)
                    return
                except Exception as exc:
                    log.warning("finish of %s failed (try %d): %s", run.op_id, attempt, exc)
                    await asyncio.sleep(0.1 * 2**attempt)  # bounded: three short tries
                    continue
                self._count_finish(status, run)
                return
            log.error("could not finish %s; the reaper will", run.op_id, extra=_extra(run))

    def _count_finish(self, status: Status, run: Run) -> None:
        self.counters.count_end(status)
        # a success is in the record; a line each would cost more than the operation at scale
        level = logging.DEBUG if status is Status.SUCCEEDED else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "finished %s: %s", run.op_id, status.value, extra=_extra(run))

    def _count_lease_lost(self, run: Run) -> None:
        count_lease_lost(self.counters, run)

    # heartbeats --------------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        # ticks finer than the interval: each operation is written once per interval at its own
        # phase (set at claim), so a worker full of operations writes a steady trickle, not a
        # burst every interval that every stream then waits behind
        tick = max(MIN_TICK, self.flush_interval / TICKS_PER_INTERVAL)
        while not self._closing.is_set():
            await _first(self._closing, timeout=tick)
            try:
                await self.heartbeats.beat(self._runs.values(), every=False)
            except Exception:
                log.exception("flush failed")

    async def flush(self) -> None:
        """Heartbeat now every running operation that has news or whose lease needs renewing."""
        await self.heartbeats.beat(self._runs.values(), every=True)

    # threads -----------------------------------------------------------------------------------
    def _new_threads(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="longrun-handler")

    def _executor(self) -> ThreadPoolExecutor:
        if self._threads is None:
            raise ConfigurationError("the worker is not started")
        return self._threads


def _extra(run: Run) -> dict[str, Any]:
    return {"operation_id": run.op_id, "operation_type": run.op_type.name}


async def _first(*events: asyncio.Event, timeout: float) -> None:
    """Until one of ``events`` is set, or ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _settle(tasks: list[asyncio.Task[None]], bound: float) -> None:
    """Wait up to ``bound`` seconds for ``tasks``; cancel what is left and let it unwind."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=bound)
    for task in pending:
        task.cancel()
    if pending:
        with contextlib.suppress(Exception):
            await asyncio.wait(pending, timeout=1.0)
