"""Request and response models of the native REST API, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import AwareDatetime, ConfigDict, Field, field_validator

from longrun.model.operation import LogEntry, Operation, OperationErrorInfo, Resource, WireModel

__all__ = [
    "CallbackRequest",
    "ErrorBody",
    "ErrorInfo",
    "ErrorPage",
    "HealthResponse",
    "HoldRequest",
    "LogPage",
    "OperationPage",
    "OperationTypeInfo",
    "OperationTypeList",
    "ResourcePage",
    "SubmitRequest",
]


class CallbackRequest(WireModel):
    """Where to POST the operation once it ends, and the secret that signs it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, examples=["https://example.com/hooks/longrun"])
    secret: str | None = Field(None, min_length=16, max_length=256)

    @field_validator("url")
    @classmethod
    def _http_url_without_credentials(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a callback url is an absolute http or https URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError("a callback url carries no credentials; use the secret")
        return url


class SubmitRequest(WireModel):
    """The body of ``POST /v1/operations``."""

    model_config = ConfigDict(extra="forbid")

    operation_type: str = Field(min_length=1, max_length=128, examples=["demo.hash"])
    input: dict[str, Any] | None = Field(None, description="validated against the type's schema")
    compartment_id: str = Field("default", description="1 to 128 characters of [A-Za-z0-9._:-]")
    not_before: AwareDatetime | None = None
    deadline: AwareDatetime | None = None
    max_attempts: int | None = Field(None, ge=1, le=1000)
    parent_id: str | None = None
    callback: CallbackRequest | None = Field(None, description="POSTed the operation once it ends")


class HoldRequest(WireModel):
    """The optional body of ``POST /v1/operations/{id}:hold``."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=1024)


class OperationPage(WireModel):
    """A page of operations; ``nextPage`` is null on the last page."""

    items: list[Operation]
    next_page: str | None = None


class LogPage(WireModel):
    """A page of an operation's log entries."""

    items: list[LogEntry]
    next_page: str | None = None


class ErrorPage(WireModel):
    """A page of an operation's errors."""

    items: list[OperationErrorInfo]
    next_page: str | None = None


class ResourcePage(WireModel):
    """A page of the resources an operation touched."""

    items: list[Resource]
    next_page: str | None = None


class OperationTypeInfo(WireModel):
    """One registered operation type."""

    name: str
    description: str = ""
    input_schema: dict[str, Any]
    max_attempts: int
    timeout: float | None = None


class OperationTypeList(WireModel):
    """Every registered operation type."""

    items: list[OperationTypeInfo]


class HealthResponse(WireModel):
    """What ``GET /healthz`` answers when the store is reachable."""

    status: str = "ok"
    store: str
    schema_version: int


class ErrorInfo(WireModel):
    """The inside of the one error shape."""

    code: str
    message: str
    target: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorBody(WireModel):
    """Every error, from every route: ``{"error": {code, message, target, details}}``."""

    error: ErrorInfo
