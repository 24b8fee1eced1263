"""The native routes on operations: submit, read, list, wait, cancel, hold, release, delete."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import AwareDatetime
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import Response

from longrun.api.schemas import (
    ErrorBody,
    ErrorPage,
    HoldRequest,
    LogPage,
    OperationPage,
    ResourcePage,
    SubmitRequest,
)
from longrun.api.webhooks import check_callback, register_callback
from longrun.model import Operation, Status
from longrun.model.operation import WireModel
from longrun.pagination import MAX_LIMIT, Page
from longrun.service import MAX_IDEMPOTENCY_KEY, Service, retry_after_seconds

__all__ = ["ServiceDep", "caller_compartments", "get_service", "operation_url", "router"]


class _OperationIdConvertor(StringConvertor):
    """An operation id in a path: no "/" and no ":", so ``{id}:cancel`` is never read as an id."""

    regex = "[^/:]+"


register_url_convertor("operation_id", _OperationIdConvertor())

router = APIRouter(tags=["operations"])

JSON_TYPE = "application/json"


async def get_service(request: Request) -> Service:
    """The Service this app serves."""
    service: Service = request.app.state.service
    return service


async def caller_compartments(request: Request) -> Collection[str] | None:
    """The compartments the caller may see, as set by an auth layer; None means all."""
    return getattr(request.state, "compartments", None)


ServiceDep = Annotated[Service, Depends(get_service)]
Scope = Annotated[Collection[str] | None, Depends(caller_compartments)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
PageToken = Annotated[str | None, Query(alias="page", description="nextPage of the previous page")]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody} for s in (400, *statuses)}


def operation_url(request: Request, op_id: str) -> str:
    """The absolute URL of an operation: from settings.public_url, else from the request."""
    base = request.app.state.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/v1/operations/{op_id}"


def _operation_response(
    service: Service, op: Operation, status_code: int = 200, *, retry_after: bool = True
) -> Response:
    headers = {}
    if retry_after and not op.is_terminal:
        headers["Retry-After"] = str(retry_after_seconds(op, service.clock.now()))
    return Response(op.to_json(), status_code=status_code, media_type=JSON_TYPE, headers=headers)


def _page_response(items: Iterable[WireModel], next_page: str | None) -> Response:
    # hot path: serialize each item once, without a response model pass
    body = '{"items":[' + ",".join(i.to_json() for i in items) + '],"nextPage":'
    body += ("null" if next_page is None else f'"{next_page}"') + "}"
    return Response(body, media_type=JSON_TYPE)


def _entries_response(page: Page[Any]) -> Response:
    return _page_response(page.items, page.next_page)


@router.post(
    "/v1/operations",
    status_code=202,
    response_model=Operation,
    responses={200: {"model": Operation, "description": "idempotent replay"}, **_errors(409, 413)},
    summary="Submit an operation",
)
async def submit_operation(
    request: Request,
    body: SubmitRequest,
    service: ServiceDep,
    scope: Scope,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
    ] = None,
) -> Response:
    if body.callback is not None:
        check_callback(request, body.callback)
    op, created = await service.submit(
        body.operation_type,
        body.input,
        compartment_id=body.compartment_id,
        idempotency_key=idempotency_key,
        not_before=body.not_before,
        deadline=body.deadline,
        max_attempts=body.max_attempts,
        parent_id=body.parent_id,
        compartments=scope,
    )
    if body.callback is not None and created:
        await register_callback(request, op.id, body.callback)
    url = operation_url(request, op.id)
    return Response(
        op.to_json(),
        status_code=202 if created else 200,
        media_type=JSON_TYPE,
        headers={"Location": url, "Operation-Location": url, "Retry-After": "1"},
    )


@router.get(
    "/v1/operations",
    response_model=OperationPage,
    responses=_errors(),
    summary="List operations, newest first",
)
async def list_operations(
    service: ServiceDep,
    scope: Scope,
    compartment_id: Annotated[list[str] | None, Query(alias="compartmentId")] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    operation_type: Annotated[list[str] | None, Query(alias="operationType")] = None,
    parent_id: Annotated[str | None, Query(alias="parentId")] = None,
    accepted_after: Annotated[AwareDatetime | None, Query(alias="acceptedAfter")] = None,
    accepted_before: Annotated[AwareDatetime | None, Query(alias="acceptedBefore")] = None,
    order: Literal["desc", "asc"] = "desc",
    limit: Limit = 100,
    page: PageToken = None,
) -> Response:
    result = await service.list(
        compartment_ids=compartment_id,
        statuses=status,
        operation_types=operation_type,
        parent_id=parent_id,
        accepted_after=accepted_after,
        accepted_before=accepted_before,
        order=order,
        page_token=page,
        limit=limit,
        compartments=scope,
    )
    return _page_response(result.items, result.next_page)


@router.get(
    "/v1/operations/{op_id:operation_id}:wait",
    response_model=Operation,
    responses=_errors(404, 410),
    summary="Wait (bounded) for an operation to reach a terminal state",
)
async def wait_operation(
    op_id: str,
    service: ServiceDep,
    scope: Scope,
    timeout: Annotated[float, Query(ge=0, le=60, description="seconds")] = 30.0,
) -> Response:
    op = await service.wait(op_id, timeout, scope)
    return _operation_response(service, op)


@router.post(
    "/v1/operations/{op_id:operation_id}:cancel",
    response_model=Operation,
    responses=_errors(404, 409, 410),
    summary="Cancel an operation",
)
async def cancel_operation(op_id: str, service: ServiceDep, scope: Scope) -> Response:
    return _operation_response(service, await service.cancel(op_id, scope), retry_after=False)


@router.post(
    "/v1/operations/{op_id:operation_id}:hold",
    response_model=Operation,
    responses=_errors(404, 409, 410),
    summary="Hold an accepted operation",
)
async def hold_operation(
    op_id: str, service: ServiceDep, scope: Scope, body: HoldRequest | None = None
) -> Response:
    op = await service.hold(op_id, body.reason if body else None, scope)
    return _operation_response(service, op, retry_after=False)


@router.post(
    "/v1/operations/{op_id:operation_id}:release",
    response_model=Operation,
    responses=_errors(404, 409, 410),
    summary="Release a held operation",
)
async def release_operation(op_id: str, service: ServiceDep, scope: Scope) -> Response:
    return _operation_response(service, await service.release(op_id, scope), retry_after=False)


@router.get(
    "/v1/operations/{op_id:operation_id}/logs",
    response_model=LogPage,
    responses=_errors(404, 410),
    summary="An operation's log entries",
)
async def operation_logs(
    op_id: str, service: ServiceDep, scope: Scope, limit: Limit = 100, page: PageToken = None
) -> Response:
    return _entries_response(await service.logs(op_id, limit, page, scope))


@router.get(
    "/v1/operations/{op_id:operation_id}/errors",
    response_model=ErrorPage,
    responses=_errors(404, 410),
    summary="An operation's errors",
)
async def operation_errors(
    op_id: str, service: ServiceDep, scope: Scope, limit: Limit = 100, page: PageToken = None
) -> Response:
    return _entries_response(await service.errors(op_id, limit, page, scope))


@router.get(
    "/v1/operations/{op_id:operation_id}/resources",
    response_model=ResourcePage,
    responses=_errors(404, 410),
    summary="The resources an operation touched",
)
async def operation_resources(
    op_id: str, service: ServiceDep, scope: Scope, limit: Limit = 100, page: PageToken = None
) -> Response:
    return _entries_response(await service.resources(op_id, limit, page, scope))


@router.get(
    "/v1/operations/{op_id:operation_id}",
    response_model=Operation,
    responses=_errors(404, 410),
    summary="Get an operation",
)
async def get_operation(op_id: str, service: ServiceDep, scope: Scope) -> Response:
    return _operation_response(service, await service.get(op_id, scope))


@router.delete(
    "/v1/operations/{op_id:operation_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(404, 409, 410),
    summary="Delete a terminal operation",
)
async def delete_operation(op_id: str, service: ServiceDep, scope: Scope) -> Response:
    await service.delete(op_id, scope)
    return Response(status_code=204)
