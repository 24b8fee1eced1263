"""The Store interface, cut at domain operations; SQLite and PostgreSQL each implement it whole.

Every write that a worker makes (heartbeat, finish) is fenced by the lease id it got at claim:
once the lease is lost (reaped, canceled and abandoned, finished), the write raises LeaseLost
and changes nothing. Every time argument is passed in, so the engine's clock is the only clock.
"""

from __future__ import annotations

import asyncio
import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime

from longrun.model import Operation, Status
from longrun.store.access import ApiKey, AuditRecord
from longrun.store.records import (
    PURGED_BY_RETENTION,
    PURGED_WITH_COMPARTMENT,
    Beat,
    ChangePage,
    Claim,
    ListQuery,
    NewOperation,
    Outcome,
    ReapReport,
    StoreStats,
    SubmitResult,
    Tombstone,
    Update,
)
from longrun.store.webhooks import Callback, DeliveryAttempt

__all__ = [
    "PURGED_BY_RETENTION",
    "PURGED_WITH_COMPARTMENT",
    "ApiKey",
    "AuditRecord",
    "Beat",
    "ChangePage",
    "Claim",
    "ListQuery",
    "NewOperation",
    "Outcome",
    "ReapReport",
    "Store",
    "StoreStats",
    "SubmitResult",
    "Tombstone",
    "Update",
]


class Store(ABC):
    """Durable home of operations. Implementations translate driver errors into StoreUnavailable."""

    # lifecycle -------------------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and background tasks."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest migration applied."""

    # writes by the service -------------------------------------------------------------------
    @abstractmethod
    async def submit(self, new: NewOperation) -> SubmitResult:
        """Insert the operation, or return the existing one with the same compartment and
        idempotency key (``created`` False, with that operation's request hash)."""

    @abstractmethod
    async def request_cancel(self, op_id: str, now: datetime) -> Operation:
        """ACCEPTED/ON_HOLD → CANCELED; IN_PROGRESS → CANCELING; CANCELING stays.
        Raises NotFound, or IllegalTransition on a terminal operation."""

    @abstractmethod
    async def hold(self, op_id: str, now: datetime, reason: str | None = None) -> Operation:
        """ACCEPTED → ON_HOLD. Raises NotFound or IllegalTransition."""

    @abstractmethod
    async def release(self, op_id: str, now: datetime) -> Operation:
        """ON_HOLD → ACCEPTED. Raises NotFound or IllegalTransition."""

    @abstractmethod
    async def delete(self, op_id: str, now: datetime) -> None:
        """Remove a terminal operation, leaving a tombstone. Raises NotFound or IllegalTransition."""

    # reads -----------------------------------------------------------------------------------
    @abstractmethod
    async def get(self, op_id: str) -> Operation | None:
        """The operation with its children's ids, or None."""

    @abstractmethod
    async def get_tombstone(self, op_id: str) -> Tombstone | None:
        """The tombstone of a purged or deleted operation, or None."""

    @abstractmethod
    async def list(self, query: ListQuery) -> builtins.list[Operation]:
        """Up to ``query.limit`` operations matching the filters, ordered by id."""

    # the worker ------------------------------------------------------------------------------
    @abstractmethod
    async def claim(
        self,
        worker_id: str,
        operation_types: Sequence[str],
        now: datetime,
        lease_seconds: float,
        limit: int,
    ) -> builtins.list[Claim]:
        """Atomically take up to ``limit`` ACCEPTED operations of these types whose ``not_before``
        has come, oldest first: IN_PROGRESS, leased to ``worker_id``. No two claims overlap."""

    @abstractmethod
    async def heartbeat(
        self, op_id: str, lease_id: str, now: datetime, lease_seconds: float, update: Update
    ) -> Status:
        """Renew the lease, write the update, advance last_action_time; return the status
        (CANCELING tells the worker to stop). Raises LeaseLost if the lease is not current."""

    async def heartbeat_many(
        self, beats: Sequence[Beat], now: datetime, lease_seconds: float
    ) -> builtins.list[Status | Exception]:
        """``heartbeat`` for each of ``beats``, all stamped ``now``: answers in the same order,
        each the status or that beat's exception (LeaseLost when its lease is not current; a beat
        with an exception wrote nothing).

        This fallback runs the beats concurrently; engines override it to commit them at once."""

        async def one(beat: Beat) -> Status | Exception:
            try:
                return await self.heartbeat(
                    beat.op_id, beat.lease_id, now, lease_seconds, beat.update
                )
            except Exception as exc:  # LeaseLost or a failure of this one write
                return exc

        return list(await asyncio.gather(*(one(beat) for beat in beats)))

    @abstractmethod
    async def finish(self, op_id: str, lease_id: str, now: datetime, outcome: Outcome) -> Operation:
        """End the attempt: a terminal status, or back to ACCEPTED with attempt+1 when
        ``outcome.retry_at`` is set. Raises LeaseLost if the lease is not current."""

    async def finish_status(
        self, op_id: str, lease_id: str, now: datetime, outcome: Outcome
    ) -> Status:
        """``finish``, answering only the status the attempt ended in (what a worker needs).

        This fallback reads the whole record back; engines override it to read the status only."""
        return (await self.finish(op_id, lease_id, now, outcome)).status

    # housekeeping ----------------------------------------------------------------------------
    @abstractmethod
    async def reap(self, now: datetime) -> ReapReport:
        """Handle expired leases by each operation's lost-worker policy, cancel CANCELING
        operations whose worker is gone, and mark MISSED what passed its deadline unstarted."""

    @abstractmethod
    async def purge(self, finished_before: datetime, now: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` terminal operations finished before the cutoff, leaving
        tombstones; return how many."""

    @abstractmethod
    async def purge_compartment(
        self, compartment_id: str, now: datetime, limit: int = 500
    ) -> builtins.list[Tombstone]:
        """Delete up to ``limit`` terminal operations of one compartment, oldest id first, leaving
        tombstones as ``purge`` does; return those tombstones. Operations that are not terminal
        stay. Call again until a batch is shorter than ``limit`` to purge them all."""

    async def changed_since(self, since: datetime, limit: int = 500) -> builtins.list[Operation]:
        """Up to ``limit`` operations whose ``last_action_time`` is at or after ``since``, in the
        order they last moved (``last_action_time``, then id): the feed of live events.

        This fallback pages through ``list``; engines override it with one indexed query."""
        found: builtins.list[Operation] = []
        after: str | None = None
        while True:
            page = await self.list(ListQuery(after_id=after, newest_first=False, limit=500))
            found.extend(op for op in page if op.last_action_time >= since)
            if len(page) < 500:
                break
            after = page[-1].id
        found.sort(key=lambda op: (op.last_action_time, op.id))
        return found[:limit]

    async def changes_since(
        self, since: datetime, limit: int, known: Mapping[str, int]
    ) -> ChangePage:
        """``changed_since``, leaving out the operations whose version ``known`` (id → version)
        already holds, which engines skip before building them: a feed that rereads a window
        pays for the rows only. Page on from the page's ``last_action_time`` while ``rows`` is
        ``limit``."""
        ops = await self.changed_since(since, limit)
        return ChangePage(
            [op for op in ops if known.get(op.id, -1) < op.version],
            len(ops),
            ops[-1].last_action_time if ops else None,
        )

    async def stats(self, now: datetime) -> StoreStats:
        """Counts by status and type, and the queue of ACCEPTED operations ready at ``now``.

        This fallback pages through ``list``; engines override it with aggregate queries."""
        counts: dict[tuple[Status, str], int] = {}
        ready, oldest = 0, None
        after: str | None = None
        while True:
            page = await self.list(ListQuery(after_id=after, newest_first=False, limit=500))
            for op in page:
                key = (op.status, op.operation_type)
                counts[key] = counts.get(key, 0) + 1
                if op.status is Status.ACCEPTED and (op.not_before is None or op.not_before <= now):
                    ready += 1
                    oldest = op.time_accepted if oldest is None else min(oldest, op.time_accepted)
            if len(page) < 500:
                return StoreStats(counts, ready, oldest)
            after = page[-1].id

    # resource locks ------------------------------------------------------------------------
    @abstractmethod
    async def acquire_locks(
        self, op_id: str, lease_id: str, keys: Sequence[str], now: datetime
    ) -> tuple[str, str] | None:
        """Take every key for the operation running under ``lease_id``, atomically, or none:
        then return ``(key, holder id)`` of a key another live operation holds. A lock lives
        while its holder is IN_PROGRESS or CANCELING under that lease, so terminal states,
        requeues and lost leases release it. LeaseLost if the lease is not current."""

    @abstractmethod
    async def lock_holders(self, keys: Sequence[str]) -> dict[str, str]:
        """For each of ``keys`` a live operation holds: key -> that operation's id."""

    @abstractmethod
    async def release_locks(self, op_id: str) -> None:
        """Drop the lock rows of an operation that ended (they are dead already; this tidies)."""

    @abstractmethod
    async def expire_audit(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` audit records older than ``before`` (oldest first); return how
        many. Without it the audit trail, one row per mutation, would grow the store forever."""

    @abstractmethod
    async def expire_tombstones(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to ``limit`` tombstones made before ``before``; return how many. Their ids
        then answer 404 like ids that never existed: the price of a store that stays bounded."""

    @abstractmethod
    async def wait_for_change(self, timeout: float) -> bool:
        """Return True as soon as any operation may have changed (in this process or another),
        False after ``timeout`` seconds without a change."""

    # access control: API keys and the audit trail ---------------------------------------------
    @abstractmethod
    async def create_key(self, key: ApiKey) -> None:
        """Store a new API key (its id is new; only the hash of its secret is given)."""

    @abstractmethod
    async def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not, or None."""

    @abstractmethod
    async def revoke_key(self, key_id: str, now: datetime) -> ApiKey:
        """Mark the key revoked (a second revoke keeps the first time). Raises NotFound."""

    @abstractmethod
    async def list_keys(self) -> builtins.list[ApiKey]:
        """Every key, oldest first."""

    @abstractmethod
    async def record_audit(self, record: AuditRecord) -> None:
        """Append one record to the audit trail."""

    @abstractmethod
    async def list_audit(
        self, limit: int = 100, before_id: str | None = None
    ) -> builtins.list[AuditRecord]:
        """Up to ``limit`` audit records, newest first, older than ``before_id`` when given."""

    # webhooks: a callback per operation, delivered once it ends -------------------------------
    @abstractmethod
    async def add_callback(
        self, operation_id: str, url: str, secret: str | None, now: datetime
    ) -> None:
        """Name the callback of an operation (a second call for the same operation is ignored)."""

    @abstractmethod
    async def get_callback(self, operation_id: str) -> Callback | None:
        """The operation's callback and how far its delivery got, or None."""

    @abstractmethod
    async def claim_callbacks(
        self, worker: str, now: datetime, lease_seconds: float, limit: int
    ) -> builtins.list[Callback]:
        """Up to ``limit`` due callbacks (PENDING, ``next_attempt_at`` passed, operation ended),
        each leased to ``worker`` for its next attempt; no two callers get the same one."""

    @abstractmethod
    async def record_delivery(
        self, worker: str, attempt: DeliveryAttempt, state: str, next_attempt_at: datetime
    ) -> bool:
        """Record one attempt and settle its callback (PENDING again at ``next_attempt_at``,
        DELIVERED or FAILED); False, and nothing written, when ``worker`` lost the lease."""

    @abstractmethod
    async def list_deliveries(self, operation_id: str) -> builtins.list[DeliveryAttempt]:
        """Every delivery attempt of the operation's callback, in order."""
