"""The worker's housekeeping: reap expired leases and missed deadlines, purge past retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import fields
from datetime import timedelta

from longrun.model import Clock, LongrunError
from longrun.store.base import ReapReport, Store

__all__ = ["PURGE_INTERVAL", "Housekeeper"]

log = logging.getLogger(__name__)

PURGE_INTERVAL = 60.0  # seconds between retention passes


class Housekeeper:
    """Runs ``store.reap`` every ``interval`` and ``store.purge`` about once a minute."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        interval: float,
        retention_seconds: float | None,
        tombstone_retention_seconds: float | None = None,
        audit_retention_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.retention_seconds = retention_seconds
        self.tombstone_retention_seconds = tombstone_retention_seconds
        self.audit_retention_seconds = audit_retention_seconds
        self.reaped = 0
        self.purged = 0
        self._last_purge: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set; a failing pass is logged and the next one tries again."""
        while not stop.is_set():
            try:
                await self.reap_once()
                if self._purge_due():
                    await self.purge_once()
            except LongrunError as exc:
                log.warning("housekeeping pass failed: %s", exc)
            except Exception:
                log.exception("housekeeping pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    async def reap_once(self) -> ReapReport:
        """One reaper pass; logs each operation it moved."""
        report = await self.store.reap(self.clock.now())
        self.reaped += report.total
        for item in fields(report):
            for op_id in getattr(report, item.name):
                log.info(
                    "reaper: operation %s %s",
                    op_id,
                    item.name,
                    extra={"operation_id": op_id, "reaped_as": item.name},
                )
        return report

    async def purge_once(self) -> int:
        """Purge terminal operations finished longer than the retention ago."""
        self._last_purge = time.monotonic()
        if self.retention_seconds is None:
            return 0
        now = self.clock.now()
        count = await self.store.purge(now - timedelta(seconds=self.retention_seconds), now)
        self.purged += count
        if count:
            log.info("retention: purged %d operations", count, extra={"purged": count})
        if self.tombstone_retention_seconds is not None:  # so the store stays bounded
            horizon = now - timedelta(seconds=self.tombstone_retention_seconds)
            expired = await self.store.expire_tombstones(horizon)
            if expired:
                log.info("retention: expired %d tombstones", expired, extra={"expired": expired})
        if self.audit_retention_seconds is not None:  # one row per mutation: bounded too
            horizon = now - timedelta(seconds=self.audit_retention_seconds)
            expired = await self.store.expire_audit(horizon)
            if expired:
                log.info("retention: expired %d audit records", expired, extra={"expired": expired})
        return count

    def _purge_due(self) -> bool:
        if self.retention_seconds is None:
            return False
        last = self._last_purge
        return last is None or time.monotonic() - last >= PURGE_INTERVAL
