"""Operation types, health, routing errors and the shape of unexpected failures."""

from __future__ import annotations

from typing import Any

from longrun.engine.registry import App


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "target", "details"}
    assert error["code"] == code
    assert "retry-after" not in response.headers
    return error


async def test_operation_types_list_their_schemas(api: Any) -> None:
    response = await api.client.get("/v1/operation-types")
    assert response.status_code == 200
    items = {item["name"]: item for item in response.json()["items"]}
    assert {"test.echo", "test.free"} <= set(items)
    echo = items["test.echo"]
    assert set(echo) == {"name", "description", "inputSchema", "maxAttempts", "timeout"}
    assert echo["description"] == "Echo the message back."
    assert echo["inputSchema"]["required"] == ["message"]
    assert echo["inputSchema"]["properties"]["count"]["maximum"] == 10
    assert (echo["maxAttempts"], echo["timeout"]) == (2, 30.0)
    assert items["test.free"]["inputSchema"] == {"type": "object"}


async def test_healthz(api: Any) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["store"] == api.store.engine
    assert isinstance(body["schemaVersion"], int) and body["schemaVersion"] >= 1


async def test_healthz_is_503_when_the_store_is_down(lenient_api: Any) -> None:
    await lenient_api.store.close()
    try:
        response = await lenient_api.client.get("/healthz")
        assert_error(response, 503, "StoreUnavailable")
    finally:
        await lenient_api.store.open()


async def test_unknown_route_is_404(api: Any) -> None:
    assert_error(await api.client.get("/v2/nothing"), 404, "NotFound")


async def test_wrong_method_is_405_and_writes_nothing(api: Any) -> None:
    op_id = (await api.submit()).json()["id"]
    error = assert_error(
        await api.client.put(f"/v1/operations/{op_id}", json={}), 405, "MethodNotAllowed"
    )
    assert error["message"]
    response = await api.client.delete("/v1/operations")
    assert_error(response, 405, "MethodNotAllowed")
    assert "POST" in response.headers["allow"]
    assert_error(await api.client.get(f"/v1/operations/{op_id}:cancel"), 405, "MethodNotAllowed")
    assert len(await api.all_ops()) == 1


async def test_unexpected_errors_are_500_without_internals(lenient_api: Any) -> None:
    async def boom() -> None:
        raise RuntimeError("secret connection string")

    lenient_api.app.add_api_route("/boom", boom)
    response = await lenient_api.client.get("/boom")
    assert_error(response, 500, "InternalError")
    assert "secret" not in response.text


async def test_openapi_documents_the_routes(api: Any) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/v1/operations",
        "/v1/operations/{op_id}",
        "/v1/operations/{op_id}:wait",
        "/v1/operations/{op_id}:cancel",
        "/v1/operations/{op_id}:hold",
        "/v1/operations/{op_id}:release",
        "/v1/operations/{op_id}/logs",
        "/v1/operation-types",
        "/healthz",
    ):
        assert path in paths
    assert "SubmitRequest" in doc["components"]["schemas"]
    assert "Operation" in doc["components"]["schemas"]


async def test_an_empty_app_lists_no_types(api_factory: Any) -> None:
    async with api_factory(app=App(), apps=[]) as api:
        assert (await api.client.get("/v1/operation-types")).json() == {"items": []}
