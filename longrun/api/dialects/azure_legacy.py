"""Older Azure shapes: ``OperationStatus`` (Cognitive Services snapshots) and ARM
``OperationProgressResult`` (database backup/export and import); read-only views.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from longrun.api.dialects._common import first_error, get_in, iso
from longrun.api.dialects.azure import ARM, ARM_STATUS, azure_error
from longrun.api.dialects.azure import router as azure_router
from longrun.api.routes_operations import Scope, ServiceDep
from longrun.model import Operation, Status

__all__ = ["LEGACY_STATUS", "operation_progress", "operation_status", "router"]

# no word for CANCELED here: a canceled operation has failed (with the message saying why)
LEGACY_STATUS: dict[Status, str] = {
    Status.ACCEPTED: "notstarted",
    Status.ON_HOLD: "notstarted",
    Status.IN_PROGRESS: "running",
    Status.CANCELING: "running",
    Status.SUCCEEDED: "succeeded",
    Status.SUCCEEDED_WITH_WARNINGS: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELED: "failed",
    Status.MISSED: "failed",
}
_BACKUP = "BackupAndExportResponse"
_IMPORT = "ImportFromStorageResponse"


def operation_status(op: Operation) -> dict[str, Any]:
    """``op`` as an ``OperationStatus``: lower-case status, ``resourceLocation``, ``message``."""
    body: dict[str, Any] = {
        "status": LEGACY_STATUS[op.status],
        "createdTime": iso(op.time_accepted),
        "lastActionTime": iso(op.last_action_time),
    }
    if op.status in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS) and op.resource_location:
        body["resourceLocation"] = op.resource_location
    if LEGACY_STATUS[op.status] == "failed":
        error = first_error(op)
        body["message"] = error["message"] if error else "the operation was canceled"
    return body


def _properties(op: Operation) -> dict[str, Any] | None:
    props = op.progress.properties
    kind = props.get("object_type")
    if kind == _BACKUP:
        out = {
            "objectType": _BACKUP,
            "backupMetadata": props.get("backup_metadata"),
            "dataTransferredInBytes": op.progress.bytes_done,
            "datasourceSizeInBytes": op.progress.bytes_total,
        }
    elif kind == _IMPORT:
        out = {"objectType": _IMPORT, "estimatedCompletionTime": iso(op.estimated_completion_time)}
    else:
        return None
    return {k: v for k, v in out.items() if v is not None}


def operation_progress(
    op: Operation, location: str, children: list[Operation] | None = None
) -> dict[str, Any]:
    """``op`` as an ARM ``OperationProgressResult``, its sub-operations in ``operations``."""
    prefix = ARM.format(compartment_id=op.compartment_id, location=location)
    body: dict[str, Any] = {
        "id": f"{prefix}/operationProgress/{op.id}",
        "name": op.id,
        "status": ARM_STATUS[op.status],
        "startTime": iso(op.time_started or op.time_accepted),
        "endTime": iso(op.time_finished),
        "percentComplete": op.percent_complete,
        "resourceId": op.resource_location,
        "properties": _properties(op),
        "error": azure_error(op) if ARM_STATUS[op.status] != "Succeeded" else None,
    }
    if children:
        body["operations"] = [operation_progress(c, location) for c in children]
    return {k: v for k, v in body.items() if v is not None}


router = APIRouter(route_class=azure_router.route_class, tags=["dialect: azure"])


@router.get("/azure/{compartment_id}/operationStatus/{op_id}")
async def get_operation_status(
    compartment_id: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """The OperationStatus of one operation."""
    return JSONResponse(operation_status(await get_in(service, op_id, compartment_id, scope)))


@router.get(ARM + "/operationProgress/{op_id}")
async def get_operation_progress(
    compartment_id: str, location: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """The OperationProgressResult of one operation and its children."""
    op = await get_in(service, op_id, compartment_id, scope)
    children = [await service.get(c, scope) for c in op.children]
    return JSONResponse(operation_progress(op, location, children))
