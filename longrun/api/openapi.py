"""The OpenAPI document, completed: every error a route can answer, in that route's error shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from longrun.api.auth import route_permission
from longrun.api.routing import route_contexts
from longrun.auth import Permission

__all__ = ["ERROR_BODY", "error_statuses", "install_openapi"]

ERROR_BODY: dict[str, Any] = {"$ref": "#/components/schemas/ErrorBody"}
_AUTHENTICATED = (400, 401, 403, 429, 503)  # bad request, credentials, role, rate, store down
_ANY_SEGMENT = "[^/]+"  # Starlette's plain string convertor
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def error_statuses(method: str, path: str) -> set[int]:
    """The error statuses a route can answer whatever its handler does: the auth layer's, the
    body limit's, the store's, and 404/409/410 for a route on one operation."""
    if route_permission(method, path) is Permission.PUBLIC:
        return {429}
    statuses = set(_AUTHENTICATED)
    if method in _WRITES:
        statuses |= {409, 413}
    if "{" in path:
        statuses.add(404)
    if "{op_id}" in path:
        statuses.add(410)
    return statuses


def _error_response(status: int, schema: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": schema}},
    }
    if status == 429:
        response["headers"] = _RETRY_AFTER
    return response


def _path_patterns(operation: dict[str, Any], convertors: dict[str, Any]) -> bool:
    """A path parameter with a convertor (an operation id, OCI's version) says its pattern, so
    that a client (or a fuzzer) knows what reaches the route; True when one does. A path off
    the pattern reaches no route: the app's own 404 answers it, in the native shape."""
    patterned = False
    for parameter in operation.get("parameters", []):
        convertor = convertors.get(parameter.get("name"))
        regex = getattr(convertor, "regex", _ANY_SEGMENT)
        if parameter.get("in") == "path" and regex != _ANY_SEGMENT:
            parameter.setdefault("schema", {})["pattern"] = f"^(?:{regex})$"
            patterned = True
    return patterned


def _complete(document: dict[str, Any], routes: list[Any]) -> None:
    paths = document.get("paths", {})
    for original, route in route_contexts(routes):
        if not isinstance(original, APIRoute) or not original.include_in_schema:
            continue
        schema = getattr(original, "error_schema", None) or ERROR_BODY
        path = route.path_format
        for method in route.methods or ():
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                continue
            patterned = _path_patterns(operation, getattr(route, "param_convertors", {}))
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # validation errors answer 400 InvalidInput
            for status in sorted(error_statuses(method, path)):
                shape = schema
                if status == 404 and patterned and schema is not ERROR_BODY:
                    shape = {"anyOf": [schema, ERROR_BODY]}  # a path off the pattern: unrouted
                responses.setdefault(str(status), _error_response(status, shape))
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)


def install_openapi(api: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on the first request)."""
    build = api.openapi
    completed: list[int] = []  # the id of the document completed last (FastAPI caches it)

    def openapi() -> dict[str, Any]:
        document = build()
        if completed != [id(document)]:
            _complete(document, list(api.routes))
            completed[:] = [id(document)]
        return document

    api.openapi = openapi  # type: ignore[method-assign]
