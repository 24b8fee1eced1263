"""Resource locks at claim: an operation takes what its type declares, or waits in ACCEPTED."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from longrun.engine.runner import Run
from longrun.model import LeaseLost, LogEntry, LogLevel, Status
from longrun.store.base import Outcome, Store

__all__ = ["LOCK_RETRY", "release_locks", "take_locks"]

log = logging.getLogger(__name__)

LOCK_RETRY = 1.0  # seconds an operation waiting for a resource stays ACCEPTED between tries


async def take_locks(store: Store, run: Run, keys: list[str], now: datetime) -> bool:
    """True when ``run`` now holds ``keys``; else it was put back to ACCEPTED to wait.

    Raises LeaseLost (and closes the run) when the claim is no longer current."""
    try:
        held = await store.acquire_locks(run.op_id, run.lease_id, keys, now)
    except LeaseLost:
        run.closed = True
        raise
    if held is None:
        return True
    message = f"waiting for {held[0]}, held by operation {held[1]}"
    earlier = run.claim.operation.logs
    repeat = bool(earlier) and earlier[-1].message == message
    wait = Outcome(
        status=Status.ACCEPTED,
        retry_at=now + timedelta(seconds=LOCK_RETRY),
        counts_attempt=False,
        logs=[] if repeat else [LogEntry(timestamp=now, level=LogLevel.INFO, message=message)],
    )
    async with run.write_lock:
        run.closed = True
        with contextlib.suppress(LeaseLost):
            await store.finish(run.op_id, run.lease_id, now, wait)
    log.info("%s %s", run.op_id, message, extra={"operation_id": run.op_id})
    return False


async def release_locks(store: Store, op_id: str) -> None:
    """Drop the lock rows of an operation that ended; they are dead already, so never raises."""
    try:
        await store.release_locks(op_id)
    except Exception as exc:
        log.warning("releasing the locks of %s failed: %s", op_id, exc)
