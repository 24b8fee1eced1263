"""The native routes about the service itself: operation types and health."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from longrun.api.routes_operations import ServiceDep
from longrun.api.schemas import ErrorBody, HealthResponse, OperationTypeList
from longrun.model import LongrunError, StoreUnavailable

__all__ = ["router"]

router = APIRouter(tags=["meta"])


@router.get(
    "/v1/operation-types",
    response_model=OperationTypeList,
    summary="The registered operation types and their input schemas",
)
async def operation_types(service: ServiceDep) -> Response:
    return JSONResponse({"items": service.operation_types()})


@router.get(
    "/healthz",
    response_model=HealthResponse,
    responses={503: {"model": ErrorBody}},
    summary="Whether the server and its store are up",
)
async def healthz(service: ServiceDep) -> Response:
    try:
        health = await service.health()
    except LongrunError:
        raise
    except Exception as exc:  # a store that is down may fail in a driver-specific way
        raise StoreUnavailable() from exc
    return JSONResponse(health)
