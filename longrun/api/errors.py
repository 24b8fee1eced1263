"""The one error map of the API: every failure leaves as ``{"error": {...}}`` with its status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from longrun.model import (
    InternalError,
    InvalidInput,
    LongrunError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)

__all__ = ["error_response", "install_error_handlers", "to_longrun_error"]

logger = logging.getLogger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_HEADERS_KEPT = {"allow"}  # never Retry-After: an error is not something to poll


def error_response(exc: LongrunError, headers: Mapping[str, str] | None = None) -> Response:
    """The one rendering of an error: its body shape and its HTTP status."""
    kept = {k: v for k, v in (headers or {}).items() if k.lower() in _HEADERS_KEPT}
    return JSONResponse(exc.to_body(), status_code=exc.http_status, headers=kept or None)


def _target(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in _LOCATIONS else "body"
    if where != "body":  # a repeated query parameter is named, not indexed
        parts = [p for p in parts if not isinstance(p, int)]
    return ".".join(str(p) for p in parts) or where


def _from_validation(exc: RequestValidationError) -> InvalidInput:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return InvalidInput("the request body is not valid JSON", target="body")
    if any(
        tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors
    ):
        return InvalidInput(
            "the request body must be a JSON object (Content-Type: application/json)",
            target="body",
        )
    details = [
        {"code": "InvalidValue", "target": _target(e.get("loc", ())), "message": str(e.get("msg"))}
        for e in errors
    ]
    target = details[0]["target"] if len(details) == 1 else None
    message = details[0]["message"] if len(details) == 1 else "the request is not valid"
    return InvalidInput(message, target=target, details=details)


def _from_http(exc: StarletteHTTPException) -> LongrunError:
    status = exc.status_code
    if status == 404:
        return NotFound("no such resource")
    if status == 405:
        return MethodNotAllowed()
    if status == 413:
        return PayloadTooLarge()
    if 400 <= status < 500:
        return InvalidInput(str(exc.detail) if exc.detail else None)
    return InternalError()


def to_longrun_error(exc: BaseException) -> LongrunError:
    """The LongrunError that stands for ``exc`` on the wire; internals never leak."""
    if isinstance(exc, LongrunError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _from_validation(exc)
    if isinstance(exc, StarletteHTTPException):
        return _from_http(exc)
    return InternalError()


async def _handle(request: Request, exc: Exception) -> Response:
    error = to_longrun_error(exc)
    if not isinstance(exc, LongrunError | RequestValidationError | StarletteHTTPException):
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    elif error.http_status >= 500:
        logger.warning("%s on %s %s: %s", error.code, request.method, request.url.path, error)
    headers = exc.headers if isinstance(exc, StarletteHTTPException) else None
    return error_response(error, headers)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the one handler."""
    for exc_type in (LongrunError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(exc_type, _handle)
