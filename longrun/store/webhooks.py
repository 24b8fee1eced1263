"""What the store keeps for webhooks: the callback of an operation and each attempt to deliver it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from longrun.model.clock import from_micros

__all__ = [
    "TERMINAL_STATUSES",
    "Callback",
    "DeliveryAttempt",
    "attempt_from_row",
    "callback_from_row",
]

# a callback is due once its operation is in one of these (the SQL lists them too)
TERMINAL_STATUSES = ("SUCCEEDED", "SUCCEEDED_WITH_WARNINGS", "FAILED", "CANCELED", "MISSED")


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return from_micros(int(value))


@dataclass(frozen=True)
class Callback:
    """Where to POST an operation once it ends, and how far delivery got.

    ``state`` is PENDING (not yet delivered), DELIVERED or FAILED (every attempt used).
    """

    operation_id: str
    url: str
    secret: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    claimed_by: str | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of an operation to its callback and how it went."""

    id: str
    operation_id: str
    attempt: int
    time: datetime
    url: str
    status_code: int | None  # None: no reply (refused, timed out)
    error: str | None
    duration_ms: int
    outcome: str  # DELIVERED, RETRY or FAILED


def callback_from_row(row: Mapping[str, Any]) -> Callback:
    """A Callback from a stored row (either engine)."""
    return Callback(
        operation_id=row["operation_id"],
        url=row["url"],
        secret=row["secret"],
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=_time(row["next_attempt_at"]),  # type: ignore[arg-type]
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        claimed_by=row["claimed_by"],
    )


def attempt_from_row(row: Mapping[str, Any]) -> DeliveryAttempt:
    """A DeliveryAttempt from a stored row (either engine)."""
    return DeliveryAttempt(
        id=row["id"],
        operation_id=row["operation_id"],
        attempt=int(row["attempt"]),
        time=_time(row["time"]),  # type: ignore[arg-type]
        url=row["url"],
        status_code=row["status_code"],
        error=row["error"],
        duration_ms=int(row["duration_ms"]),
        outcome=row["outcome"],
    )
