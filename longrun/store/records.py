"""What the Store interface passes in and out: new records, claims, updates, outcomes, queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from longrun.model import (
    LogEntry,
    LostWorkerPolicy,
    Operation,
    OperationErrorInfo,
    Progress,
    Resource,
    Status,
)

__all__ = [
    "PURGED_BY_RETENTION",
    "PURGED_WITH_COMPARTMENT",
    "Beat",
    "ChangePage",
    "Claim",
    "ListQuery",
    "NewOperation",
    "Outcome",
    "ReapReport",
    "StoreStats",
    "SubmitResult",
    "Tombstone",
    "Update",
]


@dataclass(frozen=True)
class NewOperation:
    """What submit writes: the ACCEPTED (or ON_HOLD) record and the rules the reaper needs."""

    operation: Operation
    request_hash: str | None = None
    lost_worker_policy: LostWorkerPolicy = LostWorkerPolicy.RETRY
    retry_backoff: float = 1.0  # seconds, the base of the exponential backoff
    timeout: float | None = None  # seconds a handler may run


@dataclass(frozen=True)
class SubmitResult:
    """The stored operation; ``created`` is False when an idempotency key found an existing one."""

    operation: Operation
    created: bool
    request_hash: str | None = None


@dataclass(frozen=True)
class Claim:
    """An operation a worker now owns, until ``lease_expires`` unless renewed by heartbeats."""

    operation: Operation
    lease_id: str
    lease_expires: datetime
    timeout: float | None
    retry_backoff: float


@dataclass
class Update:
    """What a worker flushes with a heartbeat: the latest progress and what was appended since."""

    percent_complete: float | None = None  # stored as max(old, new) within an attempt
    progress: Progress | None = None  # replaces the stored progress
    estimated_completion_time: datetime | None = None
    logs: list[LogEntry] = field(default_factory=list)
    errors: list[OperationErrorInfo] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    resource_location: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when a heartbeat carries nothing but the lease renewal."""
        return (
            self.percent_complete is None
            and self.progress is None
            and self.estimated_completion_time is None
            and self.resource_location is None
            and not self.logs
            and not self.errors
            and not self.resources
        )


@dataclass(frozen=True)
class Beat:
    """One running operation's heartbeat in a batch: its lease and what it reports."""

    op_id: str
    lease_id: str
    update: Update


@dataclass
class Outcome(Update):
    """How an attempt ended: a terminal status, or a retry (``retry_at`` set, back to ACCEPTED)."""

    status: Status = Status.SUCCEEDED
    result: Any = None
    retry_at: datetime | None = None
    counts_attempt: bool = True  # False when a worker shuts down: the requeue is not a new attempt


@dataclass(frozen=True)
class ListQuery:
    """Filters of a list; ``compartment_ids`` None means every compartment."""

    compartment_ids: Sequence[str] | None = None
    statuses: Sequence[Status] | None = None
    operation_types: Sequence[str] | None = None
    parent_id: str | None = None
    accepted_after: datetime | None = None  # inclusive
    accepted_before: datetime | None = None  # exclusive
    after_id: str | None = None  # the cursor: the last id of the previous page
    newest_first: bool = True
    limit: int = 100


# the reasons a tombstone gives (a 410 says "operation X was <reason> at <time>")
PURGED_BY_RETENTION = "purged by retention"
PURGED_WITH_COMPARTMENT = "purged with its compartment"


@dataclass(frozen=True)
class Tombstone:
    """What is left of a purged or deleted operation, so that its id answers 410, not 404."""

    id: str
    compartment_id: str
    operation_type: str
    status: Status
    purged_at: datetime
    reason: str


@dataclass
class ReapReport:
    """What one reaper pass did, by outcome, as lists of operation ids."""

    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(
            len(x) for x in (self.retried, self.failed, self.held, self.canceled, self.missed)
        )


@dataclass(frozen=True)
class StoreStats:
    """What metrics read from the store: counts, and the queue of operations ready to start."""

    counts: dict[tuple[Status, str], int]  # (status, operation_type) -> how many
    ready: int  # ACCEPTED operations whose not_before has come: the queue depth
    oldest_ready: datetime | None  # time_accepted of the oldest of them


@dataclass(frozen=True)
class ChangePage:
    """A page of the change feed: the operations moved at versions the reader did not know yet,
    and how far the page read (rows read, the ``last_action_time`` of the last one) to page on."""

    operations: list[Operation]
    rows: int
    last_action_time: datetime | None
