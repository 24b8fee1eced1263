"""The operation state machine: statuses, legal transitions, terminal states. No I/O."""

from __future__ import annotations

from enum import Enum

from longrun.model.errors import IllegalTransition

__all__ = ["ACTIVE", "TERMINAL", "TRANSITIONS", "Status", "check_transition"]


class Status(str, Enum):
    """Where an operation stands."""

    ACCEPTED = "ACCEPTED"
    ON_HOLD = "ON_HOLD"
    IN_PROGRESS = "IN_PROGRESS"
    CANCELING = "CANCELING"
    SUCCEEDED = "SUCCEEDED"
    SUCCEEDED_WITH_WARNINGS = "SUCCEEDED_WITH_WARNINGS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    MISSED = "MISSED"

    @property
    def is_terminal(self) -> bool:
        """True when the status can never change again."""
        return self in TERMINAL

    def __str__(self) -> str:
        return self.value


TERMINAL: frozenset[Status] = frozenset(
    {
        Status.SUCCEEDED,
        Status.SUCCEEDED_WITH_WARNINGS,
        Status.FAILED,
        Status.CANCELED,
        Status.MISSED,
    }
)
ACTIVE: frozenset[Status] = frozenset(Status) - TERMINAL

_FINISHED_BY_WORKER = {Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS, Status.FAILED}

TRANSITIONS: dict[Status, frozenset[Status]] = {
    # claim, hold, cancel, deadline passed
    Status.ACCEPTED: frozenset(
        {Status.IN_PROGRESS, Status.ON_HOLD, Status.CANCELED, Status.MISSED}
    ),
    # release, cancel, deadline passed
    Status.ON_HOLD: frozenset({Status.ACCEPTED, Status.CANCELED, Status.MISSED}),
    # finish, cancel request, lease lost / retryable error (back to ACCEPTED), lost-worker hold
    Status.IN_PROGRESS: frozenset(
        _FINISHED_BY_WORKER | {Status.CANCELING, Status.ACCEPTED, Status.ON_HOLD}
    ),
    # the handler stops (or is abandoned); it may also finish before it noticed the cancel
    Status.CANCELING: frozenset(_FINISHED_BY_WORKER | {Status.CANCELED}),
    **{s: frozenset() for s in TERMINAL},
}


def check_transition(current: Status, new: Status) -> None:
    """Raise IllegalTransition unless ``current -> new`` is an edge of the state machine."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"cannot go from {current.value} to {new.value}",
            target="status",
            details=[{"code": "CurrentStatus", "message": current.value}],
        )
