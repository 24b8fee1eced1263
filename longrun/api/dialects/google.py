"""Google: ``google.longrunning.Operation`` over REST (AIP-151), under ``/v1/projects/{compartment}``.

Extras live in ``metadata`` (a ``google.protobuf.Struct``): the client's parser rejects unknown
top-level fields. A result that is not a JSON object is wrapped as ``{"value": result}``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import JSONResponse, Response

from longrun.api.dialects._common import error_route, first_error, get_in, iso, parse_time, scope_of
from longrun.api.routes_operations import Scope, ServiceDep
from longrun.model import InvalidInput, LongrunError, Operation, Status

__all__ = [
    "GRPC_CODE",
    "STATE",
    "STRUCT",
    "google_operation",
    "operation_from_google",
    "router",
]

STRUCT = "type.googleapis.com/google.protobuf.Struct"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
DOMAIN = "longrun"
_MAX_SAFE = 2**53

STATE: dict[Status, str] = {
    Status.ACCEPTED: "PENDING",
    Status.ON_HOLD: "ON_HOLD",
    Status.IN_PROGRESS: "RUNNING",
    Status.CANCELING: "CANCELLING",
    Status.SUCCEEDED: "SUCCEEDED",
    Status.SUCCEEDED_WITH_WARNINGS: "SUCCEEDED_WITH_WARNINGS",
    Status.FAILED: "FAILED",
    Status.CANCELED: "CANCELLED",
    Status.MISSED: "MISSED",
}
_STATUS_OF = {v: k for k, v in STATE.items()}

# longrun error code -> google.rpc.Code; a handler's own codes are UNKNOWN (2)
GRPC_CODE: dict[str, int] = {
    "Canceled": 1,
    "Gone": 5,
    "InvalidInput": 3,
    "Missed": 4,
    "HandlerTimeout": 4,
    "WaitTimeout": 4,
    "NotFound": 5,
    "Forbidden": 7,
    "RateLimited": 8,
    "IllegalTransition": 9,
    "Conflict": 10,
    "IdempotencyMismatch": 10,
    "MethodNotAllowed": 12,
    "InternalError": 13,
    "WorkerLost": 14,
    "StoreUnavailable": 14,
    "Unauthorized": 16,
}
_STATUS_NAME = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
    12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED",
}  # fmt: skip


def grpc_code(code: str) -> int:
    """The google.rpc.Code of a longrun error code."""
    return GRPC_CODE.get(code, 5 if code.endswith("NotFound") else 2)


def _number(value: Any) -> Any:
    return str(value) if isinstance(value, int) and abs(value) > _MAX_SAFE else value


def _error_info(code: str, target: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {"@type": ERROR_INFO, "reason": code, "domain": DOMAIN}
    if target:
        info["metadata"] = {"target": target}
    return info


def _metadata(op: Operation) -> dict[str, Any]:
    progress = op.progress
    value: dict[str, Any] = {
        "id": op.id,
        "operationType": op.operation_type,
        "state": STATE[op.status],
        "progressPercent": op.percent_complete,
        "createTime": iso(op.time_accepted),
        "startTime": iso(op.time_started),
        "updateTime": iso(op.last_action_time),
        "endTime": iso(op.time_finished),
        "estimatedCompletionTime": iso(op.estimated_completion_time),
        "resourceLocation": op.resource_location,
        "attempt": op.attempt,
        "bytesDone": _number(progress.bytes_done),
        "bytesTotal": _number(progress.bytes_total),
        "itemsDone": _number(progress.items_done),
        "itemsTotal": _number(progress.items_total),
    }
    if op.status is Status.CANCELING:
        value["requestedCancellation"] = True
    if op.status is Status.SUCCEEDED_WITH_WARNINGS:
        value["warnings"] = [e.message for e in op.logs if e.level.value == "WARNING"]
    return {"@type": STRUCT, "value": {k: v for k, v in value.items() if v is not None}}


def _rpc_error(op: Operation) -> dict[str, Any]:
    if op.status is Status.CANCELED:
        return {"code": 1, "message": "the operation was canceled"}
    error = first_error(op) or {"code": "Unknown", "message": "the operation failed"}
    code = grpc_code(error["code"])
    details = [_error_info(error["code"], error.get("target"))]
    return {"code": code, "message": error["message"], "details": details}


def google_operation(op: Operation, location: str = "global") -> dict[str, Any]:
    """``op`` as a ``google.longrunning.Operation`` in proto3 JSON."""
    body: dict[str, Any] = {
        "name": f"projects/{op.compartment_id}/locations/{location}/operations/{op.id}",
        "metadata": _metadata(op),
        "done": op.is_terminal,
    }
    if op.status in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS):
        result = op.result if isinstance(op.result, dict) else {"value": op.result}
        body["response"] = {"@type": STRUCT, "value": {} if op.result is None else result}
    elif op.is_terminal:
        body["error"] = _rpc_error(op)
    return body


def operation_from_google(body: dict[str, Any]) -> Operation:
    """Read a google Operation written by ``google_operation`` back into the native model."""
    meta = body["metadata"]["value"]
    parts = body["name"].split("/")
    errors = []
    error = body.get("error")
    if error and error.get("code") != 1 and meta["state"] != "MISSED":
        info: dict[str, Any] = next(
            (d for d in error.get("details", []) if d.get("@type") == ERROR_INFO), {}
        )
        target = info.get("metadata", {}).get("target")
        errors.append(
            {"code": info.get("reason", "Unknown"), "message": error["message"], "target": target}
        )
    response = body.get("response", {}).get("value")
    return Operation(
        id=parts[-1],
        operation_type=meta["operationType"],
        compartment_id=parts[1],
        status=_STATUS_OF[meta["state"]],
        percent_complete=meta.get("progressPercent", 0.0),
        time_accepted=parse_time(meta["createTime"]),
        time_started=parse_time(meta.get("startTime")),
        last_action_time=parse_time(meta["updateTime"]),
        time_finished=parse_time(meta.get("endTime")),
        estimated_completion_time=parse_time(meta.get("estimatedCompletionTime")),
        resource_location=meta.get("resourceLocation"),
        attempt=int(meta.get("attempt", 1)),
        result=response,
        errors=errors,
        progress={
            k: int(meta[k])
            for k in ("bytesDone", "bytesTotal", "itemsDone", "itemsTotal")
            if k in meta
        },
    )


# routes ------------------------------------------------------------------------------------------


def _render_error(request: Request, exc: LongrunError) -> Response:
    code = grpc_code(exc.code)
    http_status = 404 if exc.http_status == 410 else exc.http_status  # Google has no 410
    body = {
        "error": {
            "code": http_status,
            "message": exc.message,
            "status": _STATUS_NAME.get(code, "UNKNOWN"),
            "details": [_error_info(exc.code, exc.target)],
        }
    }
    return JSONResponse(body, status_code=http_status)


ERROR_SCHEMA = {  # google.rpc.Status as JSON
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
router = APIRouter(route_class=error_route(_render_error, ERROR_SCHEMA), tags=["dialect: google"])

PARENT = "/v1/projects/{compartment_id}/locations/{location}"
NAME = PARENT + "/operations/{op_id:operation_id}"
_CLAUSE = re.compile(
    r'\s*(done|state|metadata\.state|operationType|metadata\.operationType)\s*=\s*"?([\w.\-]+)"?\s*'
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)s")


def _filters(text: str | None) -> tuple[list[Status] | None, list[str] | None]:
    """``done=true AND state=RUNNING AND operationType=demo.sleep`` (AIP-160, conjunctions only)."""
    statuses: set[Status] | None = None
    types: list[str] | None = None
    for clause in (text or "").split(" AND ") if text and text.strip() else []:
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            raise InvalidInput(f"unsupported filter clause: {clause.strip()}", target="filter")
        field, value = match.group(1).removeprefix("metadata."), match.group(2)
        if field == "operationType":
            types = [value]
            continue
        if field == "done" and value.lower() in ("true", "false"):
            wanted = {s for s in Status if s.is_terminal == (value.lower() == "true")}
        elif field == "state" and value in _STATUS_OF:
            wanted = {_STATUS_OF[value]}
        else:
            raise InvalidInput(f"unsupported filter value: {clause.strip()}", target="filter")
        statuses = wanted if statuses is None else statuses & wanted
    return (sorted(statuses) if statuses is not None else None), types


@router.post(PARENT + "/operationTypes/{operation_type:operation_id}:start")
async def start(
    compartment_id: str,
    location: str,
    operation_type: str,
    service: ServiceDep,
    scope: Scope,
    body: Annotated[Any, Body()] = None,
) -> Response:
    """Start an operation: 200 with the Operation (the gRPC mapping of a long-running method)."""
    op, _ = await service.submit(
        operation_type, body, compartment_id=compartment_id, compartments=scope
    )
    return JSONResponse(google_operation(op, location))


@router.get(NAME)
async def get_operation(
    compartment_id: str, location: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """GetOperation."""
    op = await get_in(service, op_id, compartment_id, scope)
    return JSONResponse(google_operation(op, location))


@router.get(PARENT + "/operations")
async def list_operations(
    compartment_id: str,
    location: str,
    service: ServiceDep,
    scope: Scope,
    filter_: Annotated[str | None, Query(alias="filter")] = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=0, le=1000)] = 0,
    page_token: Annotated[str | None, Query(alias="pageToken")] = None,
) -> Response:
    """ListOperations: ``{operations, nextPageToken}``, newest first."""
    statuses, types = _filters(filter_)
    page = await service.list(
        compartment_ids=[compartment_id],
        statuses=statuses,
        operation_types=types,
        limit=page_size or 100,
        page_token=page_token or None,
        compartments=scope_of(compartment_id, scope),
    )
    body: dict[str, Any] = {"operations": [google_operation(op, location) for op in page.items]}
    if page.next_page:
        body["nextPageToken"] = page.next_page
    return JSONResponse(body)


@router.post(NAME + ":cancel")
async def cancel_operation(
    compartment_id: str, location: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """CancelOperation: asynchronous; later reads show ``done`` with ``error.code`` 1."""
    await get_in(service, op_id, compartment_id, scope)
    await service.cancel(op_id, scope)
    return JSONResponse({})


@router.delete(NAME)
async def delete_operation(
    compartment_id: str, location: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """DeleteOperation: forget a finished operation."""
    await get_in(service, op_id, compartment_id, scope)
    await service.delete(op_id, scope)
    return JSONResponse({})


@router.post(NAME + ":wait")
async def wait_operation(
    compartment_id: str,
    location: str,
    op_id: str,
    service: ServiceDep,
    scope: Scope,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Response:
    """WaitOperation: the Operation once done, or as it stands after ``timeout`` (``"10s"``)."""
    text = str((body or {}).get("timeout", "30s"))
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidInput("timeout is a duration such as 10s", target="timeout")
    await get_in(service, op_id, compartment_id, scope)
    op = await service.wait(op_id, float(match.group(1)), scope)
    return JSONResponse(google_operation(op, location))
