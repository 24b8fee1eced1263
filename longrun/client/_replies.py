"""The client's reading of replies, without I/O: operations, pages, Retry-After, and errors
mapped back to the class the server raised."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from longrun.client._wire import OperationTypeInfo, Page
from longrun.model import (
    Gone,
    InternalError,
    InvalidInput,
    LogEntry,
    LongrunError,
    MethodNotAllowed,
    NotFound,
    Operation,
    OperationError,
    OperationErrorInfo,
    PayloadTooLarge,
    RateLimited,
    Resource,
    StoreUnavailable,
    Unauthorized,
    WaitTimeout,
    error_class,
)

__all__ = [
    "ITEM_MODELS",
    "error_from_response",
    "parse_operation",
    "parse_operation_types",
    "parse_page",
    "raise_for_error",
    "retry_after",
]

T = TypeVar("T")

_STATUS_FALLBACK: dict[int, type[LongrunError]] = {
    400: InvalidInput,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    408: WaitTimeout,
    410: Gone,
    413: PayloadTooLarge,
    429: RateLimited,
    503: StoreUnavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (integer or HTTP date), or None when absent/bad."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> LongrunError:
    """The exception that an error reply stands for: the same class the server raised."""
    body = _body(response)
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        code: str = err["code"]
        message = str(err.get("message") or code)
        target = err.get("target") if isinstance(err.get("target"), str) else None
        details = err.get("details") if isinstance(err.get("details"), list) else None
        cls = error_class(code)
        if cls is None or cls is OperationError:
            return OperationError(code, message, target=target, details=details)
        return cls(message, target=target, details=details)
    # not our shape (a proxy, a framework default page): fall back on the HTTP status
    fallback = _STATUS_FALLBACK.get(response.status_code, InternalError)
    text = response.text.strip()[:500] if response.content else ""
    return fallback(f"HTTP {response.status_code}" + (f": {text}" if text else ""))


def raise_for_error(response: httpx.Response) -> None:
    """Raise the mapped LongrunError when the reply is an error (status ≥ 400)."""
    if response.status_code >= 400:
        raise error_from_response(response)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    raise_for_error(response)
    body = _body(response)
    if not isinstance(body, dict):
        raise InternalError(
            f"the server sent a reply that is not a JSON object ({response.status_code})"
        )
    return body


def parse_operation(response: httpx.Response) -> Operation:
    """The operation in a success reply; raises the mapped error otherwise."""
    body = _json_object(response)
    try:
        return Operation.from_dict(body)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise InternalError(f"the server sent an operation that does not parse: {exc}") from None


def parse_page(response: httpx.Response, model: Callable[[dict[str, Any]], T]) -> Page[T]:
    """A ``{items, nextPage}`` reply, each item read with ``model`` (e.g. ``Operation.from_dict``)."""
    body = _json_object(response)
    items = body.get("items")
    if not isinstance(items, list):
        raise InternalError("the server sent a page without items")
    try:
        parsed = [model(item) for item in items]
    except ValidationError as exc:
        raise InternalError(f"the server sent an item that does not parse: {exc}") from None
    next_page = body.get("nextPage")
    return Page(parsed, next_page if isinstance(next_page, str) and next_page else None)


ITEM_MODELS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "logs": LogEntry.from_dict,
    "errors": OperationErrorInfo.from_dict,
    "resources": Resource.from_dict,
}


def parse_operation_types(response: httpx.Response) -> list[OperationTypeInfo]:
    """The list of ``GET /v1/operation-types``."""

    def read(item: dict[str, Any]) -> OperationTypeInfo:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InternalError("the server sent an operation type without a name")
        timeout = item.get("timeout")
        return OperationTypeInfo(
            name=item["name"],
            description=str(item.get("description") or ""),
            input_schema=dict(item.get("inputSchema") or {}),
            max_attempts=int(item.get("maxAttempts") or 1),
            timeout=float(timeout) if timeout is not None else None,
        )

    return parse_page(response, read).items
