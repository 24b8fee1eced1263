"""What a worker did since it started, as counters for metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from longrun.model import Status

__all__ = ["Counters"]


@dataclass
class Counters:
    """What this worker did since it started, for metrics."""

    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    retried: int = 0
    abandoned: int = 0
    lease_lost: int = 0
    heartbeats: int = 0

    def count_end(self, status: Status) -> None:
        """Count an attempt that ended in ``status`` (ACCEPTED: it went back for a retry)."""
        if status in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS):
            self.succeeded += 1
        elif status is Status.FAILED:
            self.failed += 1
        elif status is Status.CANCELED:
            self.canceled += 1
        elif status is Status.ACCEPTED:
            self.retried += 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
