"""Retry policy: what happens when a worker is lost, and how long to back off before a retry."""

from __future__ import annotations

from enum import Enum

__all__ = ["MAX_BACKOFF_SECONDS", "LostWorkerPolicy", "backoff_seconds"]

MAX_BACKOFF_SECONDS = 300.0


class LostWorkerPolicy(str, Enum):
    """What the reaper does with an operation whose worker lost its lease."""

    RETRY = "retry"  # back to ACCEPTED with attempt+1 (FAILED WorkerLost once attempts are spent)
    FAIL = "fail"  # FAILED WorkerLost at once
    HOLD = "hold"  # ON_HOLD with the reason, for an operator to release


def backoff_seconds(base: float, attempt: int) -> float:
    """Exponential backoff before attempt ``attempt + 1``: base, 2·base, 4·base … capped."""
    if base <= 0:
        return 0.0
    return float(min(MAX_BACKOFF_SECONDS, base * (2 ** max(0, attempt - 1))))
