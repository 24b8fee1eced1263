"""A worker's heartbeats: which running operations are due, one store call for them, the answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from longrun.engine.counters import Counters
from longrun.engine.family import Family
from longrun.engine.runner import LEASE_LOST, Run
from longrun.model import Clock, LeaseLost, Status
from longrun.store.base import Beat, Store, Update

__all__ = ["MIN_TICK", "TICKS_PER_INTERVAL", "Heartbeats", "count_lease_lost"]

log = logging.getLogger("longrun.engine.worker")

TICKS_PER_INTERVAL = 8  # the flush loop's ticks per flush_interval: the phases writes spread over
MIN_TICK = 0.005  # seconds
STATUS_EVERY = 1.0  # seconds: the longest a running operation goes without a heartbeat


def count_lease_lost(counters: Counters, run: Run) -> None:
    counters.lease_lost += 1
    log.warning("lost the lease of %s; stopped writing for it", run.op_id, extra=_extra(run))


class Heartbeats:
    """Writes the news of running operations, each about once per ``flush_interval`` at its own
    phase, so that a full worker writes a steady trickle rather than one burst per interval."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        family: Family,
        counters: Counters,
        flush_interval: float,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.clock = clock
        self.family = family
        self.counters = counters
        self.flush_interval = flush_interval
        self.lease_seconds = lease_seconds

    async def beat(self, runs: Iterable[Run], *, every: bool) -> None:
        """One store call for the operations due: news once per slot of each operation's own
        grid of ``flush_interval`` (``every``: all news now), a bare renewal when the lease or the
        cancel check needs one."""
        # a cancel must be noticed within a second even when the handler reports nothing
        renew_every = min(self.lease_seconds / 3, STATUS_EVERY)
        clock, now = time.monotonic(), self.clock.now()
        due: list[tuple[Run, Update | None]] = []
        canceling: list[Run] = []
        try:
            for run in list(runs):
                if run.closed or run.write_lock.locked():  # finishing: its finish says it all
                    continue
                renew = clock - run.last_beat >= renew_every
                if not (every or renew or clock >= run.news_due):
                    continue
                update = run.ctx.take_update(now)
                if update is None and not renew:
                    continue  # its slot stays open: the next news goes at the next tick
                if update is not None:  # its next slot on its own grid, whatever this tick's delay
                    run.news_due += self.flush_interval * (
                        1 + max(0, int((clock - run.news_due) // self.flush_interval))
                    )
                await run.write_lock.acquire()  # free (checked above, no await since): no wait
                due.append((run, update))
            if not due:
                return
            beats = [Beat(run.op_id, run.lease_id, update or Update()) for run, update in due]
            answers = await self.store.heartbeat_many(beats, now, self.lease_seconds)
            canceling = [
                run
                for (run, update), answer in zip(due, answers, strict=True)
                if self._settle(run, update, answer)
            ]
        finally:
            for run, _ in due:
                run.write_lock.release()
        for run in canceling:  # once per operation: its children are asked to cancel too
            try:
                await self.family.cancel_children(run.op_id)
            except Exception as exc:  # the next heartbeat says CANCELING again: tried again
                log.warning("cancel of the children of %s failed: %s", run.op_id, exc)
                continue
            run.request_cancel()

    def _settle(self, run: Run, update: Update | None, answer: Status | Exception) -> bool:
        """Take in one heartbeat's answer; True when the store newly says CANCELING."""
        if isinstance(answer, LeaseLost):
            run.closed = True
            run.ctx.detach()
            run.abort(LEASE_LOST)
            count_lease_lost(self.counters, run)
            return False
        if isinstance(answer, Exception):
            if update is not None:
                run.ctx.put_back(update)
            log.warning("heartbeat of %s failed: %s", run.op_id, answer, extra=_extra(run))
            return False
        run.last_beat = time.monotonic()
        self.counters.heartbeats += 1
        if answer is Status.CANCELING:
            if not run.cancel_requested:
                return True
            run.request_cancel()
        return False


def _extra(run: Run) -> dict[str, str]:
    return {"operation_id": run.op_id, "operation_type": run.op_type.name}
