"""The client's wire logic without I/O: the requests to send and the types replies are read into.

Both shells (``Client`` and ``AsyncClient``) send what this module builds and read every reply
with ``_replies``, so the two faces cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from longrun.model import (
    InvalidInput,
    LongrunError,
    Status,
)

__all__ = [
    "MAX_LONG_POLL",
    "SUBRESOURCES",
    "USER_AGENT",
    "OperationTypeInfo",
    "Page",
    "Request",
    "Unreachable",
    "build_cancel",
    "build_delete",
    "build_get",
    "build_hold",
    "build_list",
    "build_operation_types",
    "build_release",
    "build_submit",
    "build_subresource",
    "build_wait",
    "format_time",
    "merge_headers",
    "op_path",
    "timeout_for",
]

T = TypeVar("T")

USER_AGENT = "longrun-client/0.1"
MAX_LONG_POLL = 60.0  # the contract's upper bound for `:wait?timeout=`
SUBRESOURCES = ("logs", "errors", "resources")


class Unreachable(LongrunError):
    """The longrun server could not be reached."""

    http_status = 503


@dataclass(frozen=True)
class Request:
    """One HTTP request to send: what the shells pass to httpx, relative to the base URL."""

    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    long_poll: float | None = None  # the server may hold the reply this long; extend the timeout


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items and the opaque token of the next page (None on the last)."""

    items: list[T]
    next_page: str | None


@dataclass(frozen=True)
class OperationTypeInfo:
    """A registered operation type as ``GET /v1/operation-types`` describes it."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 1
    timeout: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire form (camelCase keys)."""
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "maxAttempts": self.max_attempts,
            "timeout": self.timeout,
        }


# ---------------------------------------------------------------------------------------- requests


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` and microseconds; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def op_path(operation_id: str, suffix: str = "") -> str:
    if not isinstance(operation_id, str) or not operation_id:
        raise InvalidInput("an operation id is required", target="id")
    return f"/v1/operations/{quote(operation_id, safe='')}{suffix}"


def _input_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def build_submit(
    operation_type: str,
    input: Any = None,  # noqa: A002 - the wire's own word
    *,
    compartment_id: str | None = None,
    idempotency_key: str | None = None,
    not_before: datetime | None = None,
    deadline: datetime | None = None,
    max_attempts: int | None = None,
    parent_id: str | None = None,
) -> Request:
    """``POST /v1/operations``: only the given fields are sent; the server fills the defaults."""
    body: dict[str, Any] = {"operationType": operation_type}
    if input is not None:
        body["input"] = _input_json(input)
    optional: dict[str, Any] = {
        "compartmentId": compartment_id,
        "notBefore": format_time(not_before) if not_before else None,
        "deadline": format_time(deadline) if deadline else None,
        "maxAttempts": max_attempts,
        "parentId": parent_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return Request("POST", "/v1/operations", json=body, headers=headers)


def build_get(operation_id: str) -> Request:
    """``GET /v1/operations/{id}``."""
    return Request("GET", op_path(operation_id))


def build_wait(operation_id: str, timeout: float) -> Request:
    """``GET /v1/operations/{id}:wait?timeout=S``, S clamped to the contract's 0..60."""
    bound = max(0.0, min(MAX_LONG_POLL, timeout))
    return Request(
        "GET",
        op_path(operation_id, ":wait"),
        params=[("timeout", f"{bound:.3f}".rstrip("0").rstrip("."))],
        long_poll=bound,
    )


def build_cancel(operation_id: str) -> Request:
    """``POST /v1/operations/{id}:cancel``."""
    return Request("POST", op_path(operation_id, ":cancel"))


def build_hold(operation_id: str, reason: str | None = None) -> Request:
    """``POST /v1/operations/{id}:hold`` with an optional reason."""
    body = {"reason": reason} if reason is not None else None
    return Request("POST", op_path(operation_id, ":hold"), json=body)


def build_release(operation_id: str) -> Request:
    """``POST /v1/operations/{id}:release``."""
    return Request("POST", op_path(operation_id, ":release"))


def build_delete(operation_id: str) -> Request:
    """``DELETE /v1/operations/{id}``."""
    return Request("DELETE", op_path(operation_id))


def _many(name: str, value: str | Iterable[str] | None) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [(name, value)]
    return [(name, str(v)) for v in value]


def build_list(
    *,
    compartment_id: str | Iterable[str] | None = None,
    status: Status | str | Iterable[Status | str] | None = None,
    operation_type: str | Iterable[str] | None = None,
    parent_id: str | None = None,
    accepted_after: datetime | None = None,
    accepted_before: datetime | None = None,
    order: str | None = None,
    limit: int | None = None,
    page: str | None = None,
) -> Request:
    """``GET /v1/operations`` with the filters of the contract (repeatable ones take a list)."""
    statuses: list[str] | None = None
    if status is not None:
        many = [status] if isinstance(status, str) else list(status)
        statuses = [s.value if isinstance(s, Status) else str(s).upper() for s in many]
    params = [
        *_many("compartmentId", compartment_id),
        *_many("status", statuses),
        *_many("operationType", operation_type),
    ]
    single = {
        "parentId": parent_id,
        "acceptedAfter": format_time(accepted_after) if accepted_after else None,
        "acceptedBefore": format_time(accepted_before) if accepted_before else None,
        "order": order,
        "limit": str(limit) if limit is not None else None,
        "page": page,
    }
    params.extend((k, v) for k, v in single.items() if v is not None)
    return Request("GET", "/v1/operations", params=params)


def build_subresource(
    operation_id: str, kind: str, *, limit: int | None = None, page: str | None = None
) -> Request:
    """``GET /v1/operations/{id}/{logs|errors|resources}``."""
    if kind not in SUBRESOURCES:
        raise InvalidInput(f"unknown sub-resource {kind!r}", target="kind")
    params = [("limit", str(limit))] if limit is not None else []
    if page is not None:
        params.append(("page", page))
    return Request("GET", op_path(operation_id, f"/{kind}"), params=params)


def build_operation_types() -> Request:
    """``GET /v1/operation-types``."""
    return Request("GET", "/v1/operation-types")


# ----------------------------------------------------------------------------------------- replies


def timeout_for(request: Request, timeout: float | None) -> httpx.Timeout:
    """The HTTP timeout of one request: a long poll gets its own bound on top of ``timeout``."""
    if timeout is None:
        return httpx.Timeout(None)
    if request.long_poll is None:
        return httpx.Timeout(timeout)
    return httpx.Timeout(timeout, read=timeout + request.long_poll)


def merge_headers(*sources: Mapping[str, str] | None) -> dict[str, str]:
    """Later sources win; None sources are skipped."""
    merged: dict[str, str] = {}
    for source in sources:
        if source:
            merged.update(source)
    return merged
