"""Every request passes here first: who is calling, may they use this route, are they too fast.

One pure ASGI middleware, so that native routes, dialects, streams, the dashboard's API calls and
/metrics are covered alike. It sets ``request.state.principal`` and ``.compartments`` (which the
Service enforces), ends a stream or a wait whose key is revoked or whose token expired, and hands
every exchange to the audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from longrun.api.audit import AuditTrail, Exchange
from longrun.api.ratelimit import RateLimiter
from longrun.api.routing import matching_route
from longrun.auth import Authenticator, Permission, Principal
from longrun.model import Clock, Forbidden, LongrunError, RateLimited, Unauthorized

__all__ = [
    "AuthMiddleware",
    "Gate",
    "authorize",
    "error_answer",
    "is_public_path",
    "route_permission",
]

logger = logging.getLogger(__name__)

_PUBLIC_PATHS = {"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
_PUBLIC_PREFIXES = ("/dashboard/",)  # the dashboard's static files: no data in them
_SPECIAL = {"/metrics": Permission.METRICS, "/v1/audit": Permission.ADMIN}
_BY_METHOD = {"GET": Permission.READ, "HEAD": Permission.READ, "POST": Permission.OPERATE}
_READ_ACTIONS = re.compile(r":wait$")  # a POST that only reads (Google's operations.wait)


def is_public_path(path: str) -> bool:
    """Paths served without credentials: health, the API schema, the dashboard's files."""
    return path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES)


def route_permission(method: str, route_path: str) -> Permission:
    """What a route needs: reads for GET, operator for POST, admin for DELETE and anything
    else; the few exceptions by name (metrics, the audit trail, a POST that only waits)."""
    if route_path in _PUBLIC_PATHS and method in ("GET", "HEAD"):
        return Permission.PUBLIC
    if route_path in _SPECIAL:
        return _SPECIAL[route_path]
    if method == "POST" and _READ_ACTIONS.search(route_path):
        return Permission.READ
    return _BY_METHOD.get(method, Permission.ADMIN)


async def authorize(request: Request) -> None:
    """The app-wide dependency: the caller's role must cover what the matched route needs.
    Runs inside every route (native, dialects, streams, metrics), after routing."""
    route = request.scope.get("route")
    permission = route_permission(request.method, getattr(route, "path", request.url.path))
    request.state.permission = permission
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        if permission is Permission.PUBLIC:
            return
        raise Unauthorized("credentials are required: Authorization: Bearer <key or token>")
    if not principal.may(permission):
        raise Forbidden(f"the {principal.role.value} role may not do this")


@dataclass
class Gate:
    """What the middleware needs: who checks credentials, the limiter, the audit trail."""

    authenticator: Authenticator
    limiter: RateLimiter
    audit: AuditTrail
    clock: Clock
    recheck_seconds: float = 5.0


class _Refused(Exception):
    """An early answer: the error to send, who asked, and when to retry."""

    def __init__(self, error: LongrunError, caller: str, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.caller = caller
        self.retry_after = retry_after

    def response(self, scope: Scope) -> Response:
        headers = {}
        if isinstance(self.error, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="longrun"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return error_answer(scope, self.error, headers)


def error_answer(
    scope: Scope, error: LongrunError, headers: dict[str, str] | None = None
) -> Response:
    """``error`` in the shape of the route asked for: a dialect's own (so a cloud's client
    reads its 401 or 429 as it reads any other error there), else the native shape."""
    render = getattr(matching_route(scope), "render_error", None)
    if render is None:
        response: Response = JSONResponse(error.to_body(), status_code=error.http_status)
    else:
        response = render(Request(scope), error)
    response.headers.update(headers or {})
    return response


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:?"


class AuthMiddleware:
    """Authenticate and rate-limit every request, watch long ones, audit mutations; the role
    is checked by ``authorize`` once the route is known."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope)
        try:
            principal, caller = await self._admit(scope)
        except _Refused as refused:
            exchange.caller = refused.caller
            await exchange.answer(refused.response(scope), receive, send)
            return
        exchange.caller = str(principal) if principal else exchange.caller
        state = scope.setdefault("state", {})
        state["caller"] = caller  # whose budget this is: the key or token, else the address
        if principal is not None:
            state["principal"] = principal
            if principal.compartments is not None:
                state["compartments"] = principal.compartments
        if principal is not None and (principal.key_id or principal.expires):
            await self._run_watched(principal, exchange, receive, send)
        else:
            await self.app(scope, receive, exchange.wrap(send))
        await self.gate.audit.record(exchange, self.gate.clock.now())

    async def _admit(self, scope: Scope) -> tuple[Principal | None, str]:
        """The caller (None on a public path), authenticated and within its rate, and the name
        its budgets (rate, open streams) go by."""
        authenticator = self.gate.authenticator
        caller = _address(scope)
        principal = None
        try:
            if not (authenticator.enabled and is_public_path(scope["path"])):
                principal = await authenticator.authenticate(_header(scope, b"authorization"))
                if authenticator.enabled:
                    caller = principal.caller
        except LongrunError as exc:
            raise _Refused(exc, caller) from None
        wait = self.gate.limiter.take(caller)
        if wait > 0:
            raise _Refused(RateLimited("too many requests; retry later"), caller, wait)
        return principal, caller

    async def _run_watched(
        self, principal: Principal, exchange: Exchange, receive: Receive, send: Send
    ) -> None:
        """Run the request; end it when the key is revoked or the token expires meanwhile."""
        task = asyncio.ensure_future(self.app(exchange.scope, receive, exchange.wrap(send)))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.gate.recheck_seconds)
                if task.done() or await self._still_valid(principal):
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                logger.info("request of %s ended: credentials no longer valid", principal.caller)
                revoked = Unauthorized("the credentials are no longer valid")
                await exchange.end_revoked(error_answer(exchange.scope, revoked), receive, send)
                return
            await task
        finally:
            task.cancel()

    async def _still_valid(self, principal: Principal) -> bool:
        try:
            return await self.gate.authenticator.is_still_valid(principal, self.gate.clock.now())
        except LongrunError:  # the store is down: do not cut every stream because of it
            return True
