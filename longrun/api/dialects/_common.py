"""What every dialect shares: times on the wire, absolute URLs, scoped reads and error rendering."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from longrun.api.errors import to_longrun_error
from longrun.model import LongrunError, Operation, Status
from longrun.service import Service

__all__ = [
    "ErrorRenderer",
    "base_url",
    "error_route",
    "first_error",
    "get_in",
    "iso",
    "missed_error",
    "parse_time",
    "scope_of",
]

logger = logging.getLogger(__name__)

ErrorRenderer = Callable[[Request, LongrunError], Response]
MISSED_MESSAGE = "the operation was not started before its deadline"


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with microseconds and ``Z``; None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string back to an aware UTC datetime; None stays None."""
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def base_url(request: Request) -> str:
    """The public base URL (settings.public_url, else from the request), without a final slash."""
    public: str | None = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def scope_of(compartment_id: str, scope: Collection[str] | None) -> set[str]:
    """The compartments a dialect call may see: the one in its path, if the caller may see it."""
    if scope is not None and compartment_id not in scope:
        return set()
    return {compartment_id}


async def get_in(
    service: Service, op_id: str, compartment_id: str, scope: Collection[str] | None
) -> Operation:
    """The operation when it lives in ``compartment_id`` and the caller may see it; else NotFound."""
    return await service.get(op_id, scope_of(compartment_id, scope))


def missed_error(op: Operation) -> dict[str, Any]:
    """The error that stands for MISSED in dialects that have no word for it."""
    return {"code": "Missed", "message": MISSED_MESSAGE}


def first_error(op: Operation) -> dict[str, Any] | None:
    """The operation's main error as a camelCase dict (``Missed`` when it was never started)."""
    if op.errors:
        return op.errors[-1].to_dict()
    if op.status is Status.MISSED:
        return missed_error(op)
    return None


def error_route(render: ErrorRenderer, schema: dict[str, Any] | None = None) -> type[APIRoute]:
    """A route class whose errors (validation ones included) are rendered by ``render``; the
    OpenAPI document shows them as ``schema``, and the auth layer renders its 401 and 429
    there with ``render`` too (``render_error``)."""

    class DialectRoute(APIRoute):
        """A route rendering its own errors in its dialect's shape."""

        error_schema = schema
        render_error = staticmethod(render)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:
                    known = (LongrunError, RequestValidationError, StarletteHTTPException)
                    if not isinstance(exc, known):
                        logger.error("unhandled error on %s", request.url.path, exc_info=exc)
                    return render(request, to_longrun_error(exc))

            return route

    return DialectRoute
