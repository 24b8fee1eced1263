"""Per-operation caps on a handler's logs, errors and resources: the oldest kept, then a marker."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_ERRORS",
    "DEFAULT_MAX_LOGS",
    "DEFAULT_MAX_RESOURCES",
    "Cap",
    "EntryCaps",
    "Verdict",
]

DEFAULT_MAX_LOGS = 10_000
DEFAULT_MAX_ERRORS = 1_000
DEFAULT_MAX_RESOURCES = 10_000


@dataclass(frozen=True)
class EntryCaps:
    """How many log entries, errors and resources one operation keeps, over all its attempts."""

    logs: int = DEFAULT_MAX_LOGS
    errors: int = DEFAULT_MAX_ERRORS
    resources: int = DEFAULT_MAX_RESOURCES

    def __post_init__(self) -> None:
        if self.logs < 1 or self.errors < 1 or self.resources < 1:
            raise ValueError("the caps on logs, errors and resources are at least 1")


class Verdict(enum.Enum):
    """What becomes of one more entry."""

    KEEP = "keep"
    MARK = "mark"  # the first one past the cap: the truncation marker stands in for it
    DROP = "drop"


class Cap:
    """Counts one kind of entry of one operation, starting from what is stored already, so that
    the cap holds across flushes and attempts (the marker is the entry after the last kept)."""

    def __init__(self, limit: int, existing: int) -> None:
        self.limit = limit
        self.count = existing
        self.dropped = 0

    @property
    def truncated(self) -> bool:
        return self.count > self.limit

    def admit(self) -> Verdict:
        """The verdict on the next entry (call it under the caller's lock)."""
        if self.count < self.limit:
            self.count += 1
            return Verdict.KEEP
        if self.count == self.limit:
            self.count += 1
            self.dropped += 1
            return Verdict.MARK
        self.dropped += 1
        return Verdict.DROP

    def marker(self, kind: str) -> str:
        """The marker's message."""
        return (
            f"{kind} truncated: this operation keeps its first {self.limit} {kind}; "
            "later ones are dropped"
        )
