"""The OpenAPI document names every status a route answers, each error in its route's shape."""

from __future__ import annotations

from typing import Any

import pytest

from longrun.api import create_app
from longrun.api.openapi import ERROR_BODY
from tests.integration.conftest import make_test_app, settings_for

OCI = "/{version}/operationTypes/{operation_type}/actions/start"
ARM = "/subscriptions/{compartment_id}/providers/Longrun.Operations/locations/{location}"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    settings = settings_for(tmp_path_factory.mktemp("openapi"), auth="keys")
    return create_app(settings, app=make_test_app()).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in document["paths"].items() for m, op in ops.items()]


def _error_schema(responses: dict[str, Any], status: str) -> Any:
    return responses[status]["content"]["application/json"]["schema"]


def test_every_guarded_route_documents_the_auth_layers_answers(document: dict[str, Any]) -> None:
    public = {"/healthz"}
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert "422" not in responses, f"{method} {path}: validation errors answer 400"
        assert "429" in responses, f"{method} {path}"
        if path not in public:
            assert {"400", "401", "403", "503"} <= set(responses), f"{method} {path}"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    limited = document["paths"]["/v1/operations"]["get"]["responses"]["429"]
    assert "Retry-After" in limited["headers"]


@pytest.mark.parametrize(
    ("path", "method", "shape"),
    [
        ("/v1/operations/{op_id}", "get", ERROR_BODY),
        ("/azure/{compartment_id}/operations/{op_id}", "get", ERROR_BODY),
        ("/cohesity/{compartment_id}/copyTasks/{op_id}", "get", "errorCode"),
        ("/{version}/workRequests/{op_id}", "get", "code"),
        ("/v1/projects/{compartment_id}/locations/{location}/operations", "get", "error"),
    ],
)
def test_errors_are_documented_in_the_dialects_shape(
    document: dict[str, Any], path: str, method: str, shape: Any
) -> None:
    responses = document["paths"][path][method]["responses"]
    schema = _error_schema(responses, "401")
    if isinstance(shape, dict):
        assert schema == shape
    else:
        assert shape in schema["required"]


def test_dialect_success_statuses_are_the_ones_answered(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "202" in paths[OCI]["post"]["responses"]
    assert "202" in paths["/{version}/workRequests/{op_id}"]["delete"]["responses"]
    assert "202" in paths[ARM + "/operationTypes/{operation_type}/start"]["post"]["responses"]
    assert {"200", "202"} <= set(paths[ARM + "/operationResults/{op_id}"]["get"]["responses"])


def test_routed_path_parameters_say_their_pattern(document: dict[str, Any]) -> None:
    parameters = document["paths"][OCI]["post"]["parameters"]
    version = next(p for p in parameters if p["name"] == "version")
    assert "20160918" in version["schema"]["pattern"]
    op = document["paths"]["/v1/operations/{op_id}"]["get"]["parameters"][0]
    assert op["schema"]["pattern"].startswith("^")
