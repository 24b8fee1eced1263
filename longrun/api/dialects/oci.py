"""OCI work requests under the version prefixes of the SDK clients (``/20160918/workRequests``…).

ON_HOLD is ``ACCEPTED``, SUCCEEDED_WITH_WARNINGS is ``SUCCEEDED`` (warnings are in ``/logs``),
MISSED is ``FAILED`` with an error coded ``Missed``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import JSONResponse, Response

from longrun.api.dialects._common import error_route, iso, missed_error, parse_time
from longrun.api.routes_operations import Scope, ServiceDep
from longrun.model import InvalidInput, LongrunError, Operation, Status
from longrun.pagination import filters_hash, offset_page
from longrun.service import retry_after_seconds

__all__ = [
    "ARRAY_PREFIXES",
    "ITEMS_PREFIXES",
    "STATUS",
    "operation_from_work_request",
    "router",
    "work_request",
    "work_request_errors",
    "work_request_logs",
    "work_request_summary",
]

# the list body is a bare array for these clients (iaas, mysql, container engine) ...
ARRAY_PREFIXES = ("20160918", "20190415", "20180222")
# ... and a collection {"items": [...]} for these (API gateway, network load balancer)
ITEMS_PREFIXES = ("20190501", "20200501")

STATUS: dict[Status, str] = {
    Status.ACCEPTED: "ACCEPTED",
    Status.ON_HOLD: "ACCEPTED",
    Status.IN_PROGRESS: "IN_PROGRESS",
    Status.CANCELING: "CANCELING",
    Status.SUCCEEDED: "SUCCEEDED",
    Status.SUCCEEDED_WITH_WARNINGS: "SUCCEEDED",
    Status.FAILED: "FAILED",
    Status.CANCELED: "CANCELED",
    Status.MISSED: "FAILED",
}


def work_request_errors(op: Operation) -> list[dict[str, Any]]:
    """``WorkRequestError`` entries: ``{code, message, timestamp}``."""
    errors = [
        {"code": e.code, "message": e.message, "timestamp": iso(e.timestamp or op.last_action_time)}
        for e in op.errors
    ]
    if op.status is Status.MISSED and not errors:
        errors.append({**missed_error(op), "timestamp": iso(op.time_finished)})
    return errors


def work_request_logs(op: Operation) -> list[dict[str, Any]]:
    """``WorkRequestLogEntry`` entries: ``{message, timestamp}`` (warnings prefixed ``WARNING:``)."""
    return [
        {
            "message": f"WARNING: {e.message}" if e.level.value == "WARNING" else e.message,
            "timestamp": iso(e.timestamp),
        }
        for e in op.logs
    ]


def work_request(op: Operation) -> dict[str, Any]:
    """``op`` as a ``WorkRequest`` (also a ``WorkRequestSummary``)."""
    body: dict[str, Any] = {
        "id": op.id,
        "operationType": op.operation_type,
        "status": STATUS[op.status],
        "compartmentId": op.compartment_id,
        "percentComplete": float(op.percent_complete),
        "resources": [
            {
                "entityType": r.entity_type,
                "actionType": r.action_type.value,
                "identifier": r.identifier,
                "entityUri": r.entity_uri,
            }
            for r in op.resources
        ],
        "timeAccepted": iso(op.time_accepted),
        "timeStarted": iso(op.time_started),
        "timeUpdated": iso(op.last_action_time),
        "timeFinished": iso(op.time_finished),
        "errors": work_request_errors(op),
    }
    if op.status is Status.ON_HOLD:
        body["onHold"] = True
    return body


def work_request_summary(op: Operation) -> dict[str, Any]:
    """A ``WorkRequestSummary``: the WorkRequest, its id also as ``workRequestId`` (API Gateway)."""
    return {**work_request(op), "workRequestId": op.id}


def operation_from_work_request(
    body: dict[str, Any], errors: list[dict[str, Any]] | None = None
) -> Operation:
    """Read a WorkRequest (and its ``/errors``) back into the native model."""
    errors = body.get("errors", []) if errors is None else errors
    status = Status(body["status"])
    if status is Status.FAILED and any(e.get("code") == "Missed" for e in errors):
        status, errors = Status.MISSED, []
    elif status is Status.ACCEPTED and body.get("onHold"):
        status = Status.ON_HOLD
    return Operation(
        id=body["id"],
        operation_type=body["operationType"],
        compartment_id=body["compartmentId"],
        status=status,
        percent_complete=body.get("percentComplete") or 0.0,
        resources=[
            {k: v for k, v in r.items() if v is not None} for r in body.get("resources", [])
        ],
        time_accepted=parse_time(body["timeAccepted"]),
        time_started=parse_time(body.get("timeStarted")),
        last_action_time=parse_time(body.get("timeUpdated") or body["timeAccepted"]),
        time_finished=parse_time(body.get("timeFinished")),
        errors=errors,
    )


# routes ------------------------------------------------------------------------------------------


def _request_id(request: Request) -> str:
    return request.headers.get("opc-request-id") or uuid.uuid4().hex.upper()


def _render_error(request: Request, exc: LongrunError) -> Response:
    body = {"code": exc.code, "message": exc.message}
    headers = {"opc-request-id": _request_id(request)}
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


class _VersionConvertor(StringConvertor):
    """A path segment that is one of the SDK clients' version prefixes."""

    regex = "|".join(ARRAY_PREFIXES + ITEMS_PREFIXES)


register_url_convertor("oci_version", _VersionConvertor())

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}
router = APIRouter(route_class=error_route(_render_error, ERROR_SCHEMA), tags=["dialect: oci"])

Limit = Annotated[int, Query(ge=1, le=1000)]
SortOrder = Annotated[Literal["ASC", "DESC"], Query(alias="sortOrder")]


def _json(request: Request, body: Any, status_code: int = 200, **headers: str) -> Response:
    extra = {k.replace("_", "-"): v for k, v in headers.items() if v}
    return JSONResponse(
        body, status_code=status_code, headers={"opc-request-id": _request_id(request), **extra}
    )


def _listing(version: str, items: list[Any]) -> Any:
    return items if version in ARRAY_PREFIXES else {"items": items}


@router.post(
    "/{version:oci_version}/operationTypes/{operation_type}/actions/start", status_code=202
)
async def start(
    request: Request,
    version: str,
    operation_type: str,
    service: ServiceDep,
    scope: Scope,
    compartment_id: Annotated[str, Body(alias="compartmentId")],
    input_: Annotated[Any, Body(alias="input")] = None,
    retry_token: Annotated[str | None, Header(alias="opc-retry-token")] = None,
) -> Response:
    """Start an operation: 202 with ``opc-work-request-id`` and the WorkRequest as the body."""
    op, _ = await service.submit(
        operation_type,
        input_,
        compartment_id=compartment_id,
        idempotency_key=retry_token,
        compartments=scope,
    )
    return _json(request, work_request(op), 202, opc_work_request_id=op.id)


@router.get("/{version:oci_version}/workRequests/{op_id}")
async def get_work_request(
    request: Request, version: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """GetWorkRequest, with ``etag`` and ``retry-after`` (which the SDK ignores)."""
    op = await service.get(op_id, scope)
    retry = "" if op.is_terminal else str(retry_after_seconds(op, service.clock.now()))
    return _json(request, work_request(op), etag=str(op.version), retry_after=retry)


@router.delete("/{version:oci_version}/workRequests/{op_id}", status_code=202)
async def cancel_work_request(
    request: Request, version: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """CancelWorkRequest: 202; the status goes CANCELING, then CANCELED."""
    await service.cancel(op_id, scope)
    return Response(status_code=202, headers={"opc-request-id": _request_id(request)})


async def _entries(
    request: Request,
    kind: str,
    version: str,
    op_id: str,
    service: Any,
    scope: Any,
    limit: int,
    page: str | None,
    order: str,
) -> Response:
    op = await service.get(op_id, scope)
    entries = work_request_errors(op) if kind == "errors" else work_request_logs(op)
    if order == "DESC":
        entries.reverse()
    digest = filters_hash({"k": f"oci.{kind}", "id": op_id, "o": order})
    result = offset_page(entries, limit, page, digest)
    return _json(request, _listing(version, result.items), opc_next_page=result.next_page or "")


@router.get("/{version:oci_version}/workRequests/{op_id}/errors")
async def list_errors(
    request: Request,
    version: str,
    op_id: str,
    service: ServiceDep,
    scope: Scope,
    limit: Limit = 100,
    page: str | None = None,
    sort_order: SortOrder = "ASC",
) -> Response:
    """ListWorkRequestErrors, paged with ``opc-next-page``."""
    return await _entries(
        request, "errors", version, op_id, service, scope, limit, page, sort_order
    )


@router.get("/{version:oci_version}/workRequests/{op_id}/logs")
async def list_logs(
    request: Request,
    version: str,
    op_id: str,
    service: ServiceDep,
    scope: Scope,
    limit: Limit = 100,
    page: str | None = None,
    sort_order: SortOrder = "ASC",
) -> Response:
    """ListWorkRequestLogs, paged with ``opc-next-page``."""
    return await _entries(request, "logs", version, op_id, service, scope, limit, page, sort_order)


@router.get("/{version:oci_version}/workRequests")
async def list_work_requests(
    request: Request,
    version: str,
    service: ServiceDep,
    scope: Scope,
    compartment_id: Annotated[str | None, Query(alias="compartmentId")] = None,
    resource_id: Annotated[str | None, Query(alias="resourceId")] = None,
    limit: Limit = 100,
    page: str | None = None,
) -> Response:
    """ListWorkRequests in one compartment (required), newest first; ``resourceId`` filters a page."""
    if not compartment_id:
        raise InvalidInput("compartmentId is required", target="compartmentId")
    result = await service.list(
        compartment_ids=[compartment_id], limit=limit, page_token=page, compartments=scope
    )
    items = [
        op
        for op in result.items
        if resource_id is None or any(r.identifier == resource_id for r in op.resources)
    ]
    body = _listing(version, [work_request_summary(op) for op in items])
    return _json(request, body, opc_next_page=result.next_page or "")
