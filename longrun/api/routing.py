"""The app's routes as one flat list, whatever way FastAPI keeps included routers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import routing
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["matching_route", "route_contexts"]


def route_contexts(routes: Sequence[BaseRoute]) -> Iterator[tuple[Any, Any]]:
    """(original route, effective route) of every route: the original keeps its class (and so
    a dialect's error rendering); the effective one has the full path, methods and matching."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before included routers were kept as they are
        for route in routes:
            yield route, route
        return
    for context in contexts(routes):
        yield context.original_route, context


def matching_route(scope: Scope) -> Any | None:
    """The original route that serves ``scope`` (its path, whatever the method), or None."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return None
    for original, effective in route_contexts(router.routes):
        match, _ = effective.matches(scope)
        if match is not Match.NONE:
            return original
    return None
