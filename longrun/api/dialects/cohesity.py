"""Cohesity: ``CopySnapshotTaskStatus`` (k-values, epoch-microsecond times, ``CopyRunStats``).

Routes under ``/cohesity/{compartment}``; errors are ``{"errorCode", "message"}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import JSONResponse, Response

from longrun.api.dialects._common import error_route, first_error, get_in
from longrun.api.routes_operations import Scope, ServiceDep
from longrun.model import LongrunError, Operation, Status

__all__ = ["STATUS", "copy_run_stats", "copy_task_status", "router", "usecs"]

STATUS: dict[Status, str] = {
    Status.ACCEPTED: "kAccepted",
    Status.ON_HOLD: "kOnHold",
    Status.IN_PROGRESS: "kRunning",
    Status.CANCELING: "kCanceling",
    Status.SUCCEEDED: "kSuccess",
    Status.SUCCEEDED_WITH_WARNINGS: "kWarning",
    Status.FAILED: "kFailure",
    Status.CANCELED: "kCanceled",
    Status.MISSED: "kMissed",
}


def usecs(value: datetime | None) -> int | None:
    """Unix epoch microseconds of an aware datetime; None stays None."""
    if value is None:
        return None
    return int(value.timestamp()) * 1_000_000 + value.microsecond


def copy_run_stats(op: Operation) -> dict[str, Any]:
    """``CopyRunStats``: logical bytes transferred, logical size and the transfer rate so far."""
    done, total = op.progress.bytes_done, op.progress.bytes_total
    stats: dict[str, Any] = {
        "startTimeUsecs": usecs(op.time_started),
        "endTimeUsecs": usecs(op.time_finished),
        "logicalBytesTransferred": done,
        "logicalSizeBytes": total,
        "isIncremental": op.progress.properties.get("is_incremental"),
    }
    if done is not None and op.time_started is not None:
        elapsed = ((op.time_finished or op.last_action_time) - op.time_started).total_seconds()
        stats["logicalTransferRateBps"] = int(done / elapsed) if elapsed > 0 else 0
    return {k: v for k, v in stats.items() if v is not None}


def copy_task_status(op: Operation) -> dict[str, Any]:
    """``op`` as a ``CopySnapshotTaskStatus``; ``error`` is ``"code: message"`` when it failed."""
    body: dict[str, Any] = {
        "status": STATUS[op.status],
        "taskStartTimeUsecs": usecs(op.time_started),
        "taskEndTimeUsecs": usecs(op.time_finished),
        "stats": copy_run_stats(op),
    }
    error = first_error(op)
    if error is not None and op.status in (Status.FAILED, Status.MISSED):
        body["error"] = f"{error['code']}: {error['message']}"
    return {k: v for k, v in body.items() if v is not None}


# routes ------------------------------------------------------------------------------------------


def _render_error(request: Request, exc: LongrunError) -> Response:
    return JSONResponse({"errorCode": exc.code, "message": exc.message}, exc.http_status)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["errorCode", "message"],
    "properties": {"errorCode": {"type": "string"}, "message": {"type": "string"}},
}
router = APIRouter(route_class=error_route(_render_error, ERROR_SCHEMA), tags=["dialect: cohesity"])


@router.post(
    "/cohesity/{compartment_id}/operationTypes/{operation_type}/copyTasks", status_code=201
)
async def start(
    compartment_id: str,
    operation_type: str,
    service: ServiceDep,
    scope: Scope,
    body: Annotated[Any, Body()] = None,
) -> Response:
    """Start an operation: 201 with ``{id, status}``."""
    op, _ = await service.submit(
        operation_type, body, compartment_id=compartment_id, compartments=scope
    )
    return JSONResponse({"id": op.id, **copy_task_status(op)}, 201)


@router.get("/cohesity/{compartment_id}/copyTasks/{op_id}")
async def get_status(
    compartment_id: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """The CopySnapshotTaskStatus of one operation."""
    return JSONResponse(copy_task_status(await get_in(service, op_id, compartment_id, scope)))
