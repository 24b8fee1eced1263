"""The one facade over the store and the registry: submit, read, list, cancel, hold, wait.

The API, the CLI and in-process users all call this; it checks input, tenancy (a caller sees
only its compartments) and idempotency, and never writes anything for a refused request.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from longrun.engine.registry import App, OperationType
from longrun.engine.submission import new_operation
from longrun.model import (
    Clock,
    Conflict,
    Forbidden,
    Gone,
    IdempotencyMismatch,
    InvalidInput,
    NotFound,
    Operation,
    Status,
    SystemClock,
    is_operation_id,
)
from longrun.pagination import (
    Page,
    check_limit,
    cursor_page,
    decode_cursor,
    filters_hash,
    offset_page,
)
from longrun.store.base import ListQuery, Store

__all__ = ["MAX_IDEMPOTENCY_KEY", "Service", "retry_after_seconds", "validate_compartment_id"]

MAX_IDEMPOTENCY_KEY = 256
MAX_ATTEMPTS_LIMIT = 1000
MAX_REASON = 1024
_COMPARTMENT = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# a wait re-reads at least this often, in case a change notification from elsewhere is missed
_WAIT_SLICE = 1.0

Compartments = Collection[str] | None
LogKind = Literal["logs", "errors", "resources"]
TypeInfos = list[dict[str, Any]]  # named here: inside Service, "list" is the method


def validate_compartment_id(value: str, target: str = "compartmentId") -> str:
    """``value`` when it is 1 to 128 characters of ``[A-Za-z0-9._:-]``; InvalidInput otherwise."""
    if not isinstance(value, str) or not _COMPARTMENT.fullmatch(value):
        raise InvalidInput("a compartment id is 1 to 128 of [A-Za-z0-9._:-]", target=target)
    return value


def retry_after_seconds(op: Operation, now: datetime) -> int:
    """Seconds a poller should wait: about a tenth of the time left to the ETA, 1 to 60."""
    eta = op.estimated_completion_time
    if eta is None:
        return 1
    left = (eta - now).total_seconds()
    return max(1, min(60, math.ceil(left / 10)))


def _utc(value: datetime | None, target: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("a time needs a UTC offset (RFC 3339)", target=target)
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _validated(op_type: OperationType, raw: Any) -> Any:
    try:
        return op_type.validate_input(raw)
    except InvalidInput as exc:  # the registry names fields inside the input; the wire names paths
        for detail in exc.details:
            target = detail.get("target")
            if target and target != "input" and not target.startswith("input."):
                detail["target"] = f"input.{target}"
        if exc.target is None:
            exc.target = "input"
        raise


def _statuses(values: Sequence[str | Status] | None) -> list[Status] | None:
    if values is None:
        return None
    try:
        return [Status(v) for v in values]
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise InvalidInput(f"unknown status; one of {known}", target="status") from None


class Service:
    """Operations as callers see them, over one store and one registry of operation types."""

    def __init__(
        self,
        store: Store,
        app: App,
        *,
        clock: Clock | None = None,
        max_wait_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.app = app
        self.clock: Clock = clock or SystemClock()
        self.max_wait_seconds = max_wait_seconds

    # writes ----------------------------------------------------------------------------------
    async def submit(
        self,
        operation_type: str,
        input: Any,  # noqa: A002 - the wire name of the field
        *,
        compartment_id: str = "default",
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
        deadline: datetime | None = None,
        max_attempts: int | None = None,
        parent_id: str | None = None,
        compartments: Compartments = None,
    ) -> tuple[Operation, bool]:
        """Accept a new operation; returns it and True, or the earlier one and False on a replay
        of the same idempotency key and request. IdempotencyMismatch for the same key with a
        different request."""
        validate_compartment_id(compartment_id)
        if compartments is not None and compartment_id not in compartments:
            raise Forbidden("you may not submit into that compartment", target="compartmentId")
        op_type = self.app.get(operation_type)
        value = _validated(op_type, input)
        stored_input = op_type.input_to_json(value)
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidInput(
                f"an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} characters",
                target="idempotencyKey",
            )
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT
        ):
            raise InvalidInput(
                f"maxAttempts must be from 1 to {MAX_ATTEMPTS_LIMIT}", target="maxAttempts"
            )
        not_before = _utc(not_before, "notBefore")
        deadline = _utc(deadline, "deadline")
        now = self.clock.now()
        if deadline is not None and deadline <= (not_before or now):
            raise InvalidInput(
                "the deadline must be after notBefore and after now", target="deadline"
            )
        await self._check_parent(parent_id, compartment_id)
        await self._check_locks(op_type, value)
        new = new_operation(
            op_type,
            stored_input,
            compartment_id=compartment_id,
            now=now,
            idempotency_key=idempotency_key,
            not_before=not_before,
            deadline=deadline,
            max_attempts=max_attempts,
            parent_id=parent_id,
        )
        request_hash = new.request_hash
        result = await self.store.submit(new)
        if not result.created and result.request_hash != request_hash:
            raise IdempotencyMismatch(
                "this idempotency key was already used for a different request",
                target="idempotencyKey",
                details=[
                    {"code": "ExistingOperation", "target": "id", "message": result.operation.id}
                ],
            )
        return result.operation, result.created

    async def _check_locks(self, op_type: OperationType, value: Any) -> None:
        """A type whose lock policy is ``refuse``: Conflict while a running operation holds a
        resource this one would (a conflict that slips past waits at claim instead)."""
        if op_type.lock_policy != "refuse":
            return
        keys = op_type.lock_keys(value)
        held = await self.store.lock_holders(keys) if keys else {}
        if held:
            key, holder = min(held.items())
            raise Conflict(
                f"{key} is held by operation {holder}",
                target="input",
                details=[{"code": "ResourceLocked", "target": key, "message": holder}],
            )

    async def _check_parent(self, parent_id: str | None, compartment_id: str) -> None:
        if parent_id is None:
            return
        parent = await self.store.get(parent_id) if is_operation_id(parent_id) else None
        if parent is None or parent.compartment_id != compartment_id:
            raise InvalidInput(
                "the parent operation does not exist in this compartment", target="parentId"
            )

    async def cancel(self, op_id: str, compartments: Compartments = None) -> Operation:
        """ACCEPTED/ON_HOLD → CANCELED, IN_PROGRESS → CANCELING; IllegalTransition if terminal."""
        await self.get(op_id, compartments)
        return await self.store.request_cancel(op_id, self.clock.now())

    async def hold(
        self, op_id: str, reason: str | None = None, compartments: Compartments = None
    ) -> Operation:
        """ACCEPTED → ON_HOLD, with an optional reason."""
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidInput(f"a reason is at most {MAX_REASON} characters", target="reason")
        await self.get(op_id, compartments)
        return await self.store.hold(op_id, self.clock.now(), reason)

    async def release(self, op_id: str, compartments: Compartments = None) -> Operation:
        """ON_HOLD → ACCEPTED."""
        await self.get(op_id, compartments)
        return await self.store.release(op_id, self.clock.now())

    async def delete(self, op_id: str, compartments: Compartments = None) -> None:
        """Remove a terminal operation; its id answers Gone from then on."""
        await self.get(op_id, compartments)
        await self.store.delete(op_id, self.clock.now())

    # reads -----------------------------------------------------------------------------------
    async def get(self, op_id: str, compartments: Compartments = None) -> Operation:
        """The operation; NotFound if unknown or outside ``compartments``, Gone if purged."""
        if not isinstance(op_id, str) or not is_operation_id(op_id):
            raise NotFound(target="id")
        op = await self.store.get(op_id)
        if op is not None and (compartments is None or op.compartment_id in compartments):
            return op
        # another compartment's operation does the store work of a missing one: no timing leak
        tomb = await self.store.get_tombstone(op_id)
        if op is not None or tomb is None:
            raise NotFound(target="id")
        if compartments is not None and tomb.compartment_id not in compartments:
            raise NotFound(target="id")
        raise Gone(
            f"operation {op_id} was {tomb.reason} at {_iso(tomb.purged_at)}",
            target="id",
            details=[
                {
                    "code": "Purged",
                    "target": "id",
                    "message": tomb.reason,
                    "purgedAt": _iso(tomb.purged_at),
                    "status": tomb.status.value,
                    "operationType": tomb.operation_type,
                }
            ],
        )

    async def list(
        self,
        *,
        compartment_ids: Sequence[str] | None = None,
        statuses: Sequence[str | Status] | None = None,
        operation_types: Sequence[str] | None = None,
        parent_id: str | None = None,
        accepted_after: datetime | None = None,
        accepted_before: datetime | None = None,
        order: str = "desc",
        page_token: str | None = None,
        limit: int = 100,
        compartments: Compartments = None,
    ) -> Page[Operation]:
        """One page of the operations matching the filters, newest first unless ``order="asc"``."""
        check_limit(limit)
        if order not in ("asc", "desc"):
            raise InvalidInput("order is asc or desc", target="order")
        for cid in compartment_ids or ():
            validate_compartment_id(cid)
        wanted = sorted(set(compartment_ids)) if compartment_ids else None
        if compartments is not None:
            allowed = set(compartments)
            wanted = sorted(allowed & set(wanted) if wanted is not None else allowed)
        parsed = _statuses(statuses)
        after = _utc(accepted_after, "acceptedAfter")
        before = _utc(accepted_before, "acceptedBefore")
        filters = {
            "c": wanted,
            "s": sorted(s.value for s in parsed) if parsed else None,
            "t": sorted(set(operation_types)) if operation_types else None,
            "p": parent_id,
            "a": _iso(after),
            "b": _iso(before),
            "o": order,
        }
        digest = filters_hash(filters)
        cursor = decode_cursor(page_token, digest) if page_token is not None else None
        if wanted == [] or (parent_id is not None and not is_operation_id(parent_id)):
            return Page()
        rows = await self.store.list(
            ListQuery(
                compartment_ids=wanted,
                statuses=parsed or None,
                operation_types=filters["t"],
                parent_id=parent_id,
                accepted_after=after,
                accepted_before=before,
                after_id=cursor,
                newest_first=order == "desc",
                limit=limit + 1,
            )
        )
        return cursor_page(rows, limit, digest)

    async def wait(
        self, op_id: str, timeout: float, compartments: Compartments = None
    ) -> Operation:
        """The operation once terminal, or as it stands when ``timeout`` (capped) has passed."""
        if not isinstance(timeout, int | float) or math.isnan(timeout) or timeout < 0:
            raise InvalidInput("timeout must be a number of seconds ≥ 0", target="timeout")
        deadline = time.monotonic() + min(float(timeout), self.max_wait_seconds)
        while True:
            op = await self.get(op_id, compartments)
            remaining = deadline - time.monotonic()
            if op.is_terminal or remaining <= 0:
                return op
            await self.store.wait_for_change(min(remaining, _WAIT_SLICE))

    async def logs(
        self,
        op_id: str,
        limit: int = 100,
        page_token: str | None = None,
        compartments: Compartments = None,
    ) -> Page[Any]:
        """One page of the operation's log entries, oldest first."""
        return await self._entries("logs", op_id, limit, page_token, compartments)

    async def errors(
        self,
        op_id: str,
        limit: int = 100,
        page_token: str | None = None,
        compartments: Compartments = None,
    ) -> Page[Any]:
        """One page of the operation's errors, oldest first."""
        return await self._entries("errors", op_id, limit, page_token, compartments)

    async def resources(
        self,
        op_id: str,
        limit: int = 100,
        page_token: str | None = None,
        compartments: Compartments = None,
    ) -> Page[Any]:
        """One page of the resources the operation touched, in the order it reported them."""
        return await self._entries("resources", op_id, limit, page_token, compartments)

    async def _entries(
        self,
        kind: LogKind,
        op_id: str,
        limit: int,
        page_token: str | None,
        compartments: Compartments,
    ) -> Page[Any]:
        check_limit(limit)
        digest = filters_hash({"k": kind, "id": op_id})
        op = await self.get(op_id, compartments)
        return offset_page(list(getattr(op, kind)), limit, page_token, digest)

    def operation_types(self) -> TypeInfos:
        """Every registered type with its input schema, as the wire shows it."""
        return [
            {
                "name": t.name,
                "description": t.description,
                "inputSchema": t.input_schema(),
                "maxAttempts": t.max_attempts,
                "timeout": t.timeout,
            }
            for t in self.app
        ]

    async def health(self) -> dict[str, Any]:
        """``{status, store, schemaVersion}``; the store raises StoreUnavailable when it is down."""
        version = await self.store.schema_version()
        engine = getattr(self.store, "engine", None) or type(self.store).__name__
        return {"status": "ok", "store": engine, "schemaVersion": version}
