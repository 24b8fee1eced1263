"""The audit trail of the API: one record per mutation (who, when, what, how it ended)."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from longrun.auth import Permission
from longrun.model import LongrunError, new_id
from longrun.store.base import AuditRecord, Store

__all__ = ["AuditTrail", "Exchange", "action_of"]

logger = logging.getLogger(__name__)

_PARAM = re.compile(r"\{[^}]*\}")
_ACTIONS = {"cancel", "hold", "release", "delete"}
_ERROR_BODY_MAX = 4096
_REVOKED = b'event: unauthorized\ndata: {"reason":"credentials no longer valid"}\n\n'


def action_of(method: str, route_path: str) -> str:
    """The audit name of a mutation: cancel, hold, release, delete, or submit."""
    last = _PARAM.sub("", route_path).rstrip("/").rsplit("/", 1)[-1]
    word = last.rsplit(":", 1)[-1]
    if word in _ACTIONS:
        return word
    return "delete" if method == "DELETE" else "submit"


class Exchange:
    """One request and its answer, as the audit trail and the revocation watch see them."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.caller = "anonymous"
        self.status = 0
        self.started = False
        self.complete = False
        self.event_stream = False
        self.location: str | None = None
        self._error_body = bytearray()

    @property
    def route_path(self) -> str:
        return str(getattr(self.scope.get("route"), "path", self.scope["path"]))

    @property
    def is_mutation(self) -> bool:
        """A write route was reached (its permission was set by ``authorize``)."""
        permission = (self.scope.get("state") or {}).get("permission")
        writes = permission in (Permission.OPERATE, Permission.ADMIN)
        return writes and self.method not in ("GET", "HEAD") and self.route_path != "/v1/audit"

    def wrap(self, send: Send) -> Send:
        """``send``, observed."""

        async def observed(message: Message) -> None:
            self._observe(message)
            await send(message)

        return observed

    def _observe(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
            for key, value in message.get("headers", ()):
                if key == b"content-type":
                    self.event_stream = bytes(value).startswith(b"text/event-stream")
                elif key in (b"location", b"operation-location") and self.location is None:
                    self.location = bytes(value).decode("latin-1")
        elif message["type"] == "http.response.body":
            if self.status >= 400 and len(self._error_body) < _ERROR_BODY_MAX:
                self._error_body += message.get("body", b"")
            if not message.get("more_body", False):
                self.complete = True

    async def answer(self, response: Response, receive: Receive, send: Send) -> None:
        await response(self.scope, receive, self.wrap(send))

    async def end_revoked(self, refusal: Response, receive: Receive, send: Send) -> None:
        """Finish an answer cut short because the caller's credentials stopped being valid:
        ``refusal`` if nothing was sent yet, else the end of the body (a last event on a
        stream)."""
        if not self.started:
            await self.answer(refusal, receive, send)
        elif not self.complete:
            body = _REVOKED if self.event_stream else b""
            await self.wrap(send)({"type": "http.response.body", "body": body, "more_body": False})

    def outcome(self) -> str:
        if 0 < self.status < 400:
            return "ok"
        try:
            return str(json.loads(bytes(self._error_body))["error"]["code"])[:100]
        except (ValueError, KeyError, TypeError):
            return f"http{self.status}"

    def target(self) -> str | None:
        params = self.scope.get("path_params") or {}
        found = params.get("op_id")
        if found is None and self.location:
            found = self.location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return None if found is None else str(found)[:200]

    def to_record(self, now: datetime) -> AuditRecord:
        params = self.scope.get("path_params") or {}
        compartment = params.get("compartment_id")
        return AuditRecord(
            id=new_id(),
            time=now,
            caller=self.caller,
            action=action_of(self.method, self.route_path),
            outcome=self.outcome(),
            status=self.status,
            target=self.target(),
            compartment_id=None if compartment is None else str(compartment)[:128],
        )


class AuditTrail:
    """Writes the record of every mutation to the store; a failed write is logged, not raised."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, exchange: Exchange, now: datetime) -> None:
        if not exchange.is_mutation:
            return
        record = exchange.to_record(now)
        try:
            await self.store.record_audit(record)
        except LongrunError as exc:
            logger.warning("audit record of %s %s lost: %s", record.action, record.target, exc.code)
