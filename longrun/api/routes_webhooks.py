"""The route that shows an operation's callback and every attempt to deliver it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from longrun.api.routes_operations import Scope, ServiceDep
from longrun.api.schemas import ErrorBody

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])


@router.get(
    "/v1/operations/{op_id:operation_id}/deliveries",
    responses={s: {"model": ErrorBody} for s in (400, 404, 410)},
    summary="The operation's callback and every attempt to deliver it",
)
async def list_deliveries(
    request: Request, op_id: str, service: ServiceDep, scope: Scope
) -> dict[str, Any]:
    """``callback`` (null without one; never its secret) and ``items``, oldest attempt first."""
    await service.get(op_id, scope)  # 404/410 and the caller's compartments, as for the operation
    callback = await service.store.get_callback(op_id)
    attempts = await service.store.list_deliveries(op_id)
    return {
        "callback": None
        if callback is None
        else {
            "url": callback.url,
            "state": callback.state,
            "attempts": callback.attempts,
            "nextAttemptAt": callback.next_attempt_at.isoformat().replace("+00:00", "Z"),
        },
        "items": [
            {
                "attempt": a.attempt,
                "time": a.time.isoformat().replace("+00:00", "Z"),
                "url": a.url,
                "statusCode": a.status_code,
                "error": a.error,
                "durationMs": a.duration_ms,
                "outcome": a.outcome,
            }
            for a in attempts
        ],
    }
