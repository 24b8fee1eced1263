"""What the store keeps for access control: API keys (only their hashes) and the audit trail."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from longrun.model.clock import from_micros

__all__ = ["ApiKey", "AuditRecord", "audit_from_row", "key_from_row"]


@dataclass(frozen=True)
class ApiKey:
    """A stored API key: its public id, the hash of its secret, and what it may do."""

    id: str
    secret_hash: str  # hex sha256 of the secret; the secret itself is never stored
    role: str
    compartments: tuple[str, ...]
    name: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class AuditRecord:
    """One mutation as it was asked for and how it ended."""

    id: str  # time-ordered, so the newest is the largest
    time: datetime
    caller: str
    action: str  # e.g. "submit", "cancel", "key.create"
    outcome: str  # "ok" or the error code
    status: int  # the HTTP status, 0 outside HTTP
    target: str | None = None  # the operation id or key id
    compartment_id: str | None = None


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return from_micros(int(value))


def _required_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else from_micros(int(value))


def key_from_row(row: Mapping[str, Any]) -> ApiKey:
    """The ApiKey of a stored row (times as µs integers or datetimes)."""
    compartments = row["compartments"]
    if isinstance(compartments, str):
        compartments = json.loads(compartments)
    return ApiKey(
        id=row["id"],
        secret_hash=row["secret_hash"],
        role=row["role"],
        compartments=tuple(compartments),
        name=row["name"],
        created_at=_required_time(row["created_at"]),
        revoked_at=_time(row["revoked_at"]),
    )


def audit_from_row(row: Mapping[str, Any]) -> AuditRecord:
    """The AuditRecord of a stored row."""
    return AuditRecord(
        id=row["id"],
        time=_required_time(row["time"]),
        caller=row["caller"],
        action=row["action"],
        outcome=row["outcome"],
        status=int(row["status"]),
        target=row["target"],
        compartment_id=row["compartment_id"],
    )
