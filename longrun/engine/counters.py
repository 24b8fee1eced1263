"""What a worker did since it started, as counters for metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

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

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
