"""A validated request → the NewOperation the store accepts (for the service and ctx.spawn)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from longrun.engine.registry import OperationType
from longrun.model import Progress, Status, canonical_json, new_id
from longrun.model.operation import trusted_operation
from longrun.store.base import NewOperation

__all__ = ["new_operation"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def new_operation(
    op_type: OperationType,
    stored_input: Any,
    *,
    compartment_id: str,
    now: datetime,
    idempotency_key: str | None = None,
    not_before: datetime | None = None,
    deadline: datetime | None = None,
    max_attempts: int | None = None,
    parent_id: str | None = None,
) -> NewOperation:
    """The ACCEPTED record of ``op_type`` with its input already validated and in JSON form,
    the type's rules, and (with an idempotency key) the hash that tells a replay from a misuse."""
    request_hash = None
    if idempotency_key is not None:  # only a replay of a key is ever compared
        request_hash = hashlib.sha256(
            canonical_json(
                {
                    "operationType": op_type.name,
                    "input": stored_input,
                    "compartmentId": compartment_id,
                    "notBefore": _iso(not_before),
                    "deadline": _iso(deadline),
                    "maxAttempts": max_attempts,
                    "parentId": parent_id,
                }
            ).encode()
        ).hexdigest()
    # every value is already checked (the service, the registry): no second validation
    operation = trusted_operation(
        {
            "id": new_id(),
            "operation_type": op_type.name,
            "compartment_id": compartment_id,
            "status": Status.ACCEPTED,
            "input": stored_input,
            "percent_complete": 0.0,
            "progress": Progress(),
            "estimated_completion_time": None,
            "time_accepted": now,
            "time_started": None,
            "last_action_time": now,
            "time_finished": None,
            "resource_location": None,
            "result": None,
            "errors": [],
            "logs": [],
            "resources": [],
            "parent_id": parent_id,
            "children": [],
            "attempt": 1,
            "max_attempts": max_attempts or op_type.max_attempts,
            "not_before": not_before,
            "deadline": deadline,
            "idempotency_key": idempotency_key,
            "worker_id": None,
            "version": 1,
        }
    )
    return NewOperation(
        operation=operation,
        request_hash=request_hash,
        lost_worker_policy=op_type.lost_worker_policy,
        retry_backoff=op_type.retry_backoff,
        timeout=op_type.timeout,
    )
