"""Azure: the data-plane status monitor (azure-core LROBasePolling) and ARM (ARMPolling).

Data plane under ``/azure/{compartment}``; ARM under ``/subscriptions/{compartment}/providers/
Longrun.Operations/locations/{location}``. CANCELING is ``Running`` (+``cancelRequested``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import JSONResponse, Response

from longrun.api.dialects._common import (
    base_url,
    error_route,
    first_error,
    get_in,
    iso,
    parse_time,
    scope_of,
)
from longrun.api.routes_operations import Scope, ServiceDep
from longrun.model import IdempotencyMismatch, InvalidInput, LongrunError, Operation, Status
from longrun.service import Service, retry_after_seconds

__all__ = [
    "API_VERSION",
    "ARM",
    "ARM_PROVIDER",
    "ARM_STATUS",
    "STATUS",
    "arm_status",
    "azure_error",
    "operation_from_monitor",
    "router",
    "status_monitor",
]

API_VERSION = "2025-01-01"
ARM_PROVIDER = "Longrun.Operations"

STATUS: dict[Status, str] = {
    Status.ACCEPTED: "NotStarted",
    Status.ON_HOLD: "NotStarted",
    Status.IN_PROGRESS: "Running",
    Status.CANCELING: "Running",
    Status.SUCCEEDED: "Succeeded",
    Status.SUCCEEDED_WITH_WARNINGS: "Succeeded",
    Status.FAILED: "Failed",
    Status.CANCELED: "Canceled",
    Status.MISSED: "Failed",
}
ARM_STATUS: dict[Status, str] = {
    **STATUS,
    Status.ACCEPTED: "Accepted",
    Status.ON_HOLD: "Accepted",
    Status.IN_PROGRESS: "InProgress",
    Status.CANCELING: "InProgress",
}


def azure_error(op: Operation) -> dict[str, Any] | None:
    """The OData v4 error of a failed operation: code, message, target, details, additionalInfo."""
    error = first_error(op)
    if error is None:
        return None
    out = {"code": error["code"], "message": error["message"], "details": error.get("details", [])}
    if error.get("target"):
        out["target"] = error["target"]
    if error.get("additionalInfo"):
        out["additionalInfo"] = error["additionalInfo"]
    return out


def _warnings(op: Operation) -> list[str]:
    return [e.message for e in op.logs if e.level.value == "WARNING"]


def status_monitor(op: Operation) -> dict[str, Any]:
    """The data-plane status monitor of ``op`` (no ``resourceLocation``: the poller would GET it)."""
    body: dict[str, Any] = {
        "id": op.id,
        "status": STATUS[op.status],
        "operationType": op.operation_type,
        "percentComplete": op.percent_complete,
        "createdDateTime": iso(op.time_accepted),
        "lastActionDateTime": iso(op.last_action_time),
    }
    if op.time_started is not None:
        body["startedDateTime"] = iso(op.time_started)
    if op.time_finished is not None:
        body["finishedDateTime"] = iso(op.time_finished)
    if op.status is Status.ON_HOLD:
        body["onHold"] = True
    if op.status is Status.CANCELING:
        body["cancelRequested"] = True
    if op.status in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS):
        body["result"] = op.result
    if op.status is Status.SUCCEEDED_WITH_WARNINGS:
        body["warnings"] = _warnings(op)
    error = azure_error(op)
    if error is not None and STATUS[op.status] != "Succeeded":
        body["error"] = error
    return body


def _status_back(body: dict[str, Any]) -> Status:
    status = str(body["status"]).lower()
    if status == "notstarted":
        return Status.ON_HOLD if body.get("onHold") else Status.ACCEPTED
    if status == "running":
        return Status.CANCELING if body.get("cancelRequested") else Status.IN_PROGRESS
    if status == "succeeded":
        return Status.SUCCEEDED_WITH_WARNINGS if body.get("warnings") else Status.SUCCEEDED
    if status == "canceled":
        return Status.CANCELED
    missed = (body.get("error") or {}).get("code") == "Missed"
    return Status.MISSED if missed else Status.FAILED


def operation_from_monitor(body: dict[str, Any], compartment_id: str) -> Operation:
    """Read a data-plane status monitor back into the native model (warnings become log-less)."""
    error = body.get("error")
    return Operation(
        id=body["id"],
        operation_type=body.get("operationType", "unknown"),
        compartment_id=compartment_id,
        status=_status_back(body),
        percent_complete=body.get("percentComplete", 0.0),
        time_accepted=parse_time(body["createdDateTime"]),
        time_started=parse_time(body.get("startedDateTime")),
        last_action_time=parse_time(body["lastActionDateTime"]),
        time_finished=parse_time(body.get("finishedDateTime")),
        result=body.get("result"),
        errors=[error] if error and error.get("code") != "Missed" else [],
    )


def _arm_prefix(compartment_id: str, location: str) -> str:
    return f"/subscriptions/{compartment_id}/providers/{ARM_PROVIDER}/locations/{location}"


def arm_status(op: Operation, location: str) -> dict[str, Any]:
    """The ARM ``Azure-AsyncOperation`` body of ``op``."""
    body: dict[str, Any] = {
        "id": f"{_arm_prefix(op.compartment_id, location)}/operationStatuses/{op.id}",
        "name": op.id,
        "status": ARM_STATUS[op.status],
        "startTime": iso(op.time_started or op.time_accepted),
        "percentComplete": op.percent_complete,
        "properties": {"operationType": op.operation_type, "result": op.result},
    }
    if op.time_finished is not None:
        body["endTime"] = iso(op.time_finished)
    error = azure_error(op)
    if error is not None and ARM_STATUS[op.status] != "Succeeded":
        body["error"] = error
    return body


# routes ------------------------------------------------------------------------------------------


def _render_error(request: Request, exc: LongrunError) -> Response:
    if isinstance(exc, IdempotencyMismatch):  # the guideline: a reused Operation-Id is a 400
        exc = InvalidInput(exc.message, target="Operation-Id", details=exc.details)
    body = exc.to_body()
    body["error"] = {k: v for k, v in body["error"].items() if v is not None}
    return JSONResponse(body, status_code=exc.http_status, headers={"x-ms-error-code": exc.code})


router = APIRouter(route_class=error_route(_render_error), tags=["dialect: azure"])

ApiVersion = Annotated[str, Query(alias="api-version")]
Input = Annotated[Any, Body()]


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status_code, headers=headers)


def _retry(service: Service, op: Operation) -> dict[str, str]:
    return (
        {} if op.is_terminal else {"Retry-After": str(retry_after_seconds(op, service.clock.now()))}
    )


async def _submit(
    service: Service, operation_type: str, body: Any, compartment_id: str, scope: Any, key: Any
) -> Operation:
    op, _ = await service.submit(
        operation_type, body, compartment_id=compartment_id, idempotency_key=key, compartments=scope
    )
    return op


@router.post(
    "/azure/{compartment_id}/operation-types/{operation_type:operation_id}:start", status_code=202
)
async def start(
    request: Request,
    compartment_id: str,
    operation_type: str,
    service: ServiceDep,
    scope: Scope,
    body: Input = None,
    api_version: ApiVersion = API_VERSION,
    operation_id: Annotated[str | None, Header(alias="Operation-Id")] = None,
) -> Response:
    """Start an operation of ``operation_type``: 202 with an absolute Operation-Location."""
    op = await _submit(service, operation_type, body, compartment_id, scope, operation_id)
    url = f"{base_url(request)}/azure/{compartment_id}/operations/{op.id}?api-version={api_version}"
    headers = {"Operation-Location": url, "Operation-Id": op.id, "Retry-After": "1"}
    return _json(status_monitor(op), 202, headers)


@router.get("/azure/{compartment_id}/operations/{op_id:operation_id}")
async def get_monitor(
    compartment_id: str, op_id: str, service: ServiceDep, scope: Scope, api_version: ApiVersion = ""
) -> Response:
    """The status monitor; Retry-After while it runs."""
    op = await get_in(service, op_id, compartment_id, scope)
    return _json(status_monitor(op), headers=_retry(service, op))


@router.post("/azure/{compartment_id}/operations/{op_id:operation_id}:cancel")
async def cancel(
    compartment_id: str, op_id: str, service: ServiceDep, scope: Scope, api_version: ApiVersion = ""
) -> Response:
    """Request cancellation; 200 with the monitor."""
    await get_in(service, op_id, compartment_id, scope)
    return _json(status_monitor(await service.cancel(op_id, scope)))


async def _list_page(
    request: Request, service: Service, compartment_id: str, scope: Any, size: int, token: Any
) -> tuple[list[Operation], str | None]:
    page = await service.list(
        compartment_ids=[compartment_id],
        compartments=scope_of(compartment_id, scope),
        limit=size,
        page_token=token,
    )
    if page.next_page is None:
        return page.items, None
    url = request.url.include_query_params(skipToken=page.next_page, maxpagesize=size)
    return page.items, str(url).replace(str(request.base_url).rstrip("/"), base_url(request), 1)


@router.get("/azure/{compartment_id}/operations")
async def list_monitors(
    request: Request,
    compartment_id: str,
    service: ServiceDep,
    scope: Scope,
    maxpagesize: Annotated[int, Query(ge=1, le=1000)] = 100,
    skip_token: Annotated[str | None, Query(alias="skipToken")] = None,
    api_version: ApiVersion = "",
) -> Response:
    """A page of monitors, newest first: ``{value, nextLink}``."""
    items, link = await _list_page(request, service, compartment_id, scope, maxpagesize, skip_token)
    body: dict[str, Any] = {"value": [status_monitor(op) for op in items]}
    if link:
        body["nextLink"] = link
    return _json(body)


ARM = "/subscriptions/{compartment_id}/providers/" + ARM_PROVIDER + "/locations/{location}"


@router.post(ARM + "/operationTypes/{operation_type}/start", status_code=202)
async def arm_start(
    request: Request,
    compartment_id: str,
    location: str,
    operation_type: str,
    service: ServiceDep,
    scope: Scope,
    body: Input = None,
    api_version: ApiVersion = API_VERSION,
) -> Response:
    """Start an operation the ARM way: 202, Azure-AsyncOperation and Location, no body."""
    op = await _submit(service, operation_type, body, compartment_id, scope, None)
    base = f"{base_url(request)}{_arm_prefix(compartment_id, location)}"
    query = f"?api-version={api_version}"
    headers = {
        "Azure-AsyncOperation": f"{base}/operationStatuses/{op.id}{query}",
        "Location": f"{base}/operationResults/{op.id}{query}",
        "Retry-After": "1",
    }
    return Response(status_code=202, headers=headers)


@router.get(ARM + "/operationStatuses/{op_id}")
async def arm_get_status(
    compartment_id: str, location: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """The ARM async-operation status; Retry-After while it runs."""
    op = await get_in(service, op_id, compartment_id, scope)
    return _json(arm_status(op, location), headers=_retry(service, op))


@router.get(
    ARM + "/operationResults/{op_id}",
    responses={202: {"description": "still running: poll Location"}, 400: {}},
)
async def arm_get_result(
    request: Request,
    compartment_id: str,
    location: str,
    op_id: str,
    service: ServiceDep,
    scope: Scope,
) -> Response:
    """202 with Location while it runs; 200 with the result once it succeeded."""
    op = await get_in(service, op_id, compartment_id, scope)
    if not op.is_terminal:
        headers = {"Location": str(request.url), **_retry(service, op)}
        return Response(status_code=202, headers=headers)
    if ARM_STATUS[op.status] == "Succeeded":
        return _json(op.result)
    error = azure_error(op) or {"code": "Canceled", "message": "the operation was canceled"}
    return _json({"error": error}, 400, {"x-ms-error-code": error["code"]})


@router.post(ARM + "/operationStatuses/{op_id}/cancel")
async def arm_cancel(
    compartment_id: str, location: str, op_id: str, service: ServiceDep, scope: Scope
) -> Response:
    """Request cancellation; 200 with the ARM status."""
    await get_in(service, op_id, compartment_id, scope)
    return _json(arm_status(await service.cancel(op_id, scope), location))


@router.get(ARM + "/operationStatuses")
async def arm_list(
    request: Request,
    compartment_id: str,
    location: str,
    service: ServiceDep,
    scope: Scope,
    maxpagesize: Annotated[int, Query(ge=1, le=1000)] = 100,
    skip_token: Annotated[str | None, Query(alias="skipToken")] = None,
) -> Response:
    """A page of ARM statuses, newest first: ``{value, nextLink}``."""
    items, link = await _list_page(request, service, compartment_id, scope, maxpagesize, skip_token)
    body: dict[str, Any] = {"value": [arm_status(op, location) for op in items]}
    if link:
        body["nextLink"] = link
    return _json(body)
