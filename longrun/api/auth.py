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

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from longrun.api.audit import AuditTrail, Exchange
from longrun.api.ratelimit import RateLimiter
from longrun.auth import Authenticator, Permission, Principal, Role
from longrun.model import Clock, Forbidden, LongrunError, RateLimited, Unauthorized

__all__ = ["AuthMiddleware", "Gate", "route_permission"]

logger = logging.getLogger(__name__)

_PUBLIC_PATHS = {"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
_SPECIAL = {"/metrics": Permission.METRICS, "/v1/audit": Permission.ADMIN}
_BY_METHOD = {"GET": Permission.READ, "HEAD": Permission.READ, "POST": Permission.OPERATE}
_READ_ACTIONS = re.compile(r":wait$")  # a POST that only reads (Google's operations.wait)


def route_permission(method: str, route: BaseRoute | None) -> Permission:
    """What a request needs: public pages, reads, operator writes, admin for DELETE and anything
    else. Unknown paths need credentials too, so a missing route's 404 is not public."""
    if isinstance(route, Mount):
        return Permission.PUBLIC if route.path == "/dashboard" else Permission.READ
    path = getattr(route, "path", None)
    if path is None:
        return Permission.READ
    if path in _PUBLIC_PATHS and method in ("GET", "HEAD"):
        return Permission.PUBLIC
    if path in _SPECIAL:
        return _SPECIAL[path]
    if method == "POST" and _READ_ACTIONS.search(path):
        return Permission.READ
    return _BY_METHOD.get(method, Permission.ADMIN)


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

    def response(self) -> JSONResponse:
        headers = {}
        if isinstance(self.error, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="longrun"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return JSONResponse(
            self.error.to_body(), status_code=self.error.http_status, headers=headers
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:?"


class AuthMiddleware:
    """Authenticate, authorize by route, rate-limit, watch long requests, audit mutations."""

    def __init__(self, app: ASGIApp, router: Router, gate: Gate) -> None:
        self.app = app
        self.router = router
        self.gate = gate

    def _route(self, scope: Scope) -> BaseRoute | None:
        partial = None
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
            if match is Match.PARTIAL and partial is None:
                partial = route
        return partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        exchange = Exchange(scope, route, route_permission(scope["method"], route))
        try:
            principal = await self._admit(scope, exchange.permission)
        except _Refused as refused:
            exchange.caller = refused.caller
            await exchange.answer(refused.response(), receive, send)
        else:
            exchange.caller = principal.caller
            state = scope.setdefault("state", {})
            state["principal"] = principal
            if principal.compartments is not None:
                state["compartments"] = principal.compartments
            watched = principal.key_id is not None or principal.expires is not None
            if watched:
                await self._run_watched(principal, exchange, receive, send)
            else:
                await self.app(scope, receive, exchange.wrap(send))
        await self.gate.audit.record(exchange, self.gate.clock.now())

    async def _admit(self, scope: Scope, permission: Permission) -> Principal:
        """The caller, once authenticated, allowed on this route and within its rate."""
        authenticator = self.gate.authenticator
        caller = _address(scope)
        try:
            if permission is Permission.PUBLIC and authenticator.enabled:
                principal = Principal(caller, Role.READER, frozenset())
            else:
                principal = await authenticator.authenticate(_header(scope, b"authorization"))
                if authenticator.enabled:
                    caller = principal.caller
            wait = self.gate.limiter.take(caller)
            if wait > 0:
                raise _Refused(RateLimited("too many requests; retry later"), caller, wait)
            if not principal.may(permission):
                raise Forbidden(f"the {principal.role.value} role may not do this")
            return principal
        except LongrunError as exc:
            raise _Refused(exc, caller) from None

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
                await exchange.end_revoked(receive, send)
                return
            await task
        finally:
            task.cancel()

    async def _still_valid(self, principal: Principal) -> bool:
        try:
            return await self.gate.authenticator.is_still_valid(principal, self.gate.clock.now())
        except LongrunError:  # the store is down: do not cut every stream because of it
            return True
