"""Pure decisions shared by every engine: manual transitions and what to do with a lost worker."""

from __future__ import annotations

from dataclasses import dataclass

from longrun.model import IllegalTransition, LostWorkerPolicy, OperationErrorInfo, Status, utcnow

__all__ = ["LostWorkerDecision", "lost_worker_decision", "manual_transition"]


def manual_transition(
    current: Status, action: str, reason: str | None = None
) -> tuple[Status, str]:
    """The target status and log line of ``cancel``, ``hold`` or ``release`` from ``current``."""
    if action == "cancel":
        if current in (Status.ACCEPTED, Status.ON_HOLD):
            return Status.CANCELED, "canceled before it started"
        if current is Status.IN_PROGRESS:
            return Status.CANCELING, "cancel requested; waiting for the handler to stop"
        if current is Status.CANCELING:
            return current, ""
        raise IllegalTransition(
            f"operation is {current.value}; it can no longer be canceled", target="status"
        )
    if action == "hold":
        if current is not Status.ACCEPTED:
            raise IllegalTransition(
                f"only an ACCEPTED operation can be held; it is {current.value}", target="status"
            )
        return Status.ON_HOLD, "put on hold" + (f": {reason}" if reason else "")
    if action == "release":
        if current is not Status.ON_HOLD:
            raise IllegalTransition(
                f"only an ON_HOLD operation can be released; it is {current.value}", target="status"
            )
        return Status.ACCEPTED, "released from hold"
    raise ValueError(f"unknown action {action!r}")


@dataclass(frozen=True)
class LostWorkerDecision:
    """Where an operation goes when its worker's lease expired, and why."""

    status: Status
    message: str
    report: str  # the ReapReport list it is counted in
    error: OperationErrorInfo | None = None


def lost_worker_decision(
    current: Status,
    attempt: int,
    max_attempts: int,
    policy: LostWorkerPolicy,
    worker_id: str | None,
) -> LostWorkerDecision:
    """Apply the operation type's lost-worker policy to an expired lease."""
    who = f"worker {worker_id}" if worker_id else "its worker"
    if current is Status.CANCELING:
        return LostWorkerDecision(
            Status.CANCELED, f"{who} was lost while canceling; canceled", "canceled"
        )
    if policy is LostWorkerPolicy.HOLD:
        return LostWorkerDecision(
            Status.ON_HOLD,
            f"{who} stopped heartbeating; on hold for an operator (lost-worker policy)",
            "held",
        )
    if policy is LostWorkerPolicy.RETRY and attempt < max_attempts:
        return LostWorkerDecision(
            Status.ACCEPTED,
            f"{who} stopped heartbeating; retrying (attempt {attempt + 1} of {max_attempts})",
            "retried",
        )
    spent = "attempts spent" if policy is LostWorkerPolicy.RETRY else "lost-worker policy is fail"
    message = f"{who} stopped heartbeating during attempt {attempt} of {max_attempts}; {spent}"
    error = OperationErrorInfo(code="WorkerLost", message=message, target=None, timestamp=utcnow())
    return LostWorkerDecision(Status.FAILED, message, "failed", error)
