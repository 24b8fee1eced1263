"""Time: UTC everywhere, an injectable clock, and the integer microseconds the stores keep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "Clock",
    "ManualClock",
    "SkewedClock",
    "SystemClock",
    "from_micros",
    "to_micros",
    "utcnow",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch for an aware datetime."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """The UTC datetime for microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=value)


class Clock(Protocol):
    """Where the engine reads the time; replace it to test leases and deadlines without sleeping."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return utcnow()


class SkewedClock:
    """The wall clock shifted by ``offset_seconds`` (ahead when positive): a host whose clock is off."""

    def __init__(self, offset_seconds: float) -> None:
        self.offset = timedelta(seconds=offset_seconds)

    def now(self) -> datetime:
        return utcnow() + self.offset


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += timedelta(seconds=seconds)

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (forward or backward)."""
        self._now = value
