"""The operation record: every field of DESIGN.md, camelCase on the wire, snake_case in Python."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_serializer, field_validator
from pydantic.alias_generators import to_camel, to_snake

from longrun.model.status import Status

__all__ = [
    "ActionType",
    "ErrorDetail",
    "LogEntry",
    "LogLevel",
    "Operation",
    "OperationErrorInfo",
    "Progress",
    "Resource",
    "WireModel",
    "trusted_operation",
]

JSON = Any


class WireModel(BaseModel):
    """Base of every wire object: camelCase JSON, snake_case attributes, generated-client helpers."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(serialization_alias=to_camel, validation_alias=to_camel),
        populate_by_name=True,
        use_enum_values=False,
        extra="ignore",
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a dict (camelCase keys)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        """The wire form as JSON text."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Read the wire form back (camelCase or snake_case keys)."""
        return cls.model_validate(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Any:
        """Read the wire form back from JSON text."""
        return cls.model_validate_json(text)


class LogLevel(str, Enum):
    """Severity of a log entry."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class ActionType(str, Enum):
    """What an operation did to a resource."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    IN_PROGRESS = "IN_PROGRESS"
    RELATED = "RELATED"


class ErrorDetail(WireModel):
    """Additional information attached to an error: ``{type, info}``."""

    type: str
    info: JSON = None


class OperationErrorInfo(WireModel):
    """One structured error of an operation."""

    code: str
    message: str
    target: str | None = None
    details: list[dict[str, JSON]] = Field(default_factory=list)
    additional_info: list[ErrorDetail] = Field(default_factory=list)
    timestamp: datetime | None = None


class LogEntry(WireModel):
    """One log line of an operation."""

    timestamp: datetime
    level: LogLevel = LogLevel.INFO
    message: str


class Resource(WireModel):
    """A resource the operation touched."""

    entity_type: str
    action_type: ActionType
    identifier: str
    entity_uri: str | None = None


@functools.lru_cache(maxsize=4096)
def _camel(key: str) -> str:
    """A property's wire name; cached, since each operation serializes the same few keys often."""
    return to_camel(key)


@functools.lru_cache(maxsize=4096)
def _snake(key: str) -> str:
    """A property's Python name, from its wire name (or itself); cached like ``_camel``."""
    return key if key.islower() else to_snake(key)


class Progress(WireModel):
    """Typed progress counters plus type-specific properties (camelCase keys on the wire)."""

    bytes_done: int | None = None
    bytes_total: int | None = None
    items_done: int | None = None
    items_total: int | None = None
    properties: dict[str, JSON] = Field(default_factory=dict)

    @field_serializer("properties")
    def _camel_keys(self, value: dict[str, JSON]) -> dict[str, JSON]:
        return {_camel(k): v for k, v in value.items()}

    @field_validator("properties", mode="before")
    @classmethod
    def _snake_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_snake(k): v for k, v in value.items()}
        return value


class Operation(WireModel):
    """One long-running operation, as stored and as returned by the native API."""

    id: str
    operation_type: str
    compartment_id: str
    status: Status
    input: JSON = Field(default_factory=dict)
    percent_complete: float = 0.0
    progress: Progress = Field(default_factory=Progress)
    estimated_completion_time: datetime | None = None
    time_accepted: datetime
    time_started: datetime | None = None
    last_action_time: datetime
    time_finished: datetime | None = None
    resource_location: str | None = None
    result: JSON = None
    errors: list[OperationErrorInfo] = Field(default_factory=list)
    logs: list[LogEntry] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    parent_id: str | None = None
    children: list[str] = Field(default_factory=list)
    attempt: int = 1
    max_attempts: int = 1
    not_before: datetime | None = None
    deadline: datetime | None = None
    idempotency_key: str | None = None
    worker_id: str | None = None
    version: int = 1

    @property
    def is_terminal(self) -> bool:
        """True when the status can never change again."""
        return self.status.is_terminal


_OPERATION_FIELDS = tuple(Operation.model_fields)


def trusted_operation(data: dict[str, Any]) -> Operation:
    """An Operation from values a store wrote itself: every field present, each of its type.

    Nothing is validated (pydantic's own ``model_construct`` costs more than validating);
    a dict that does not name exactly the fields is validated as usual instead."""
    if len(data) != len(_OPERATION_FIELDS):
        return Operation.model_validate(data)
    try:  # in declaration order, which is the order pydantic serializes in
        ordered = {name: data[name] for name in _OPERATION_FIELDS}
    except KeyError:
        return Operation.model_validate(data)
    op = Operation.__new__(Operation)
    object.__setattr__(op, "__dict__", ordered)
    object.__setattr__(op, "__pydantic_fields_set__", set(_OPERATION_FIELDS))
    object.__setattr__(op, "__pydantic_extra__", None)
    object.__setattr__(op, "__pydantic_private__", None)
    return op


def canonical_json(value: JSON) -> str:
    """Stable JSON text (sorted keys, no spaces): what idempotency compares."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
