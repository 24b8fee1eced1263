"""The registry of operation types: ``@app.operation("snapshot.take", input=Model, ...)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from longrun.model import InvalidInput, LostWorkerPolicy
from longrun.model.limits import check_json_shape

__all__ = ["App", "Handler", "LockPolicy", "Locks", "OperationType"]

Handler = Callable[..., Any]  # handler(ctx, input) -> result; async def or plain def
Locks = Callable[[Any], Iterable[str]]  # locks(input) -> the resources an operation touches
LockPolicy = Literal["wait", "refuse"]  # a conflict waits in ACCEPTED, or is refused at submit


@dataclass(frozen=True)
class OperationType:
    """One registered type: its handler, its input model and its rules."""

    name: str
    handler: Handler
    input_model: type[BaseModel] | None = None
    max_attempts: int = 1
    timeout: float | None = None
    lost_worker_policy: LostWorkerPolicy = LostWorkerPolicy.RETRY
    retry_backoff: float = 1.0
    cancel_grace: float = 5.0
    description: str = ""
    locks: Locks | None = None
    lock_policy: LockPolicy = "wait"

    def lock_keys(self, value: Any) -> list[str]:
        """The resources an operation with this (validated) input holds while it runs."""
        if self.locks is None:
            return []
        return sorted({str(key) for key in self.locks(value)})

    def validate_input(self, raw: Any) -> Any:
        """The input as the handler will see it (a model instance); InvalidInput if it is not valid."""
        check_json_shape(raw)  # bounded before any model walks it
        if self.input_model is None:
            if raw is None:
                return {}
            if not isinstance(raw, dict):
                raise InvalidInput("input must be a JSON object", target="input")
            return raw
        try:
            return self.input_model.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            details = [
                {
                    "code": "InvalidValue",
                    "target": ".".join(str(p) for p in err["loc"]) or "input",
                    "message": err["msg"],
                }
                for err in exc.errors(include_url=False)
            ]
            raise InvalidInput(
                f"input does not match the schema of {self.name}", target="input", details=details
            ) from None

    def input_to_json(self, value: Any) -> Any:
        """The stored (JSON) form of a validated input."""
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        return value

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the input."""
        if self.input_model is None:
            return {"type": "object"}
        return self.input_model.model_json_schema()


class App:
    """A set of operation types; workers run them, the service validates submits against them."""

    def __init__(self) -> None:
        self._types: dict[str, OperationType] = {}

    def operation(
        self,
        name: str,
        *,
        input: type[BaseModel] | None = None,  # noqa: A002 - the public keyword of the decorator
        max_attempts: int = 1,
        timeout: float | None = None,
        lost_worker: LostWorkerPolicy | str = LostWorkerPolicy.RETRY,
        retry_backoff: float = 1.0,
        cancel_grace: float = 5.0,
        locks: Locks | None = None,
        lock_policy: LockPolicy = "wait",
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of ``name``."""

        def decorate(handler: Handler) -> Handler:
            self.register(
                OperationType(
                    name=name,
                    handler=handler,
                    input_model=input,
                    max_attempts=max_attempts,
                    timeout=timeout,
                    lost_worker_policy=LostWorkerPolicy(lost_worker),
                    retry_backoff=retry_backoff,
                    cancel_grace=cancel_grace,
                    description=(handler.__doc__ or "").strip().split("\n")[0],
                    locks=locks,
                    lock_policy=lock_policy,
                )
            )
            return handler

        return decorate

    def register(self, op_type: OperationType) -> None:
        """Add a type; a name may be registered once."""
        if not op_type.name or len(op_type.name) > 128:
            raise InvalidInput("an operation type needs a name of 1 to 128 characters")
        if op_type.max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1", target=op_type.name)
        if op_type.lock_policy not in ("wait", "refuse"):
            raise InvalidInput("lock_policy is 'wait' or 'refuse'", target=op_type.name)
        if op_type.name in self._types:
            raise InvalidInput(f"operation type {op_type.name!r} is already registered")
        self._types[op_type.name] = op_type

    def include(self, other: App) -> None:
        """Add every type of ``other``."""
        for op_type in other:
            self.register(op_type)

    def get(self, name: str) -> OperationType:
        """The type called ``name``; InvalidInput when there is none."""
        try:
            return self._types[name]
        except KeyError:
            raise InvalidInput(
                f"unknown operation type {name!r}",
                target="operationType",
                details=[{"code": "KnownTypes", "message": ", ".join(sorted(self._types))}],
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[OperationType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._types)
