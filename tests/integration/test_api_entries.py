"""GET /v1/operations/{id}/logs, /errors and /resources: offset pages in report order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from longrun.model import ActionType, LogEntry, LogLevel, OperationErrorInfo, Resource, Status
from longrun.store.base import Update

KINDS = ["logs", "errors", "resources"]


async def finished_with_entries(api: Any, n: int = 25) -> str:
    op_id: str = (await api.submit()).json()["id"]
    now = api.clock.now()
    update = Update(
        logs=[
            LogEntry(timestamp=now + timedelta(seconds=i), level=LogLevel.INFO, message=f"log {i}")
            for i in range(n)
        ],
        errors=[OperationErrorInfo(code="Oops", message=f"error {i}") for i in range(n)],
        resources=[
            Resource(entity_type="file", action_type=ActionType.CREATED, identifier=f"res {i}")
            for i in range(n)
        ],
    )
    await api.run(op_id, Status.SUCCEEDED_WITH_WARNINGS, update=update)
    return op_id


def label(kind: str, item: dict[str, Any]) -> str:
    return str(item["identifier"] if kind == "resources" else item["message"])


@pytest.mark.parametrize("kind", KINDS)
async def test_entries_come_in_pages(api: Any, kind: str) -> None:
    op_id = await finished_with_entries(api)
    word = {"logs": "log", "errors": "error", "resources": "res"}[kind]
    seen: list[str] = []
    sizes = []
    token = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if token:
            params["page"] = token
        response = await api.client.get(f"/v1/operations/{op_id}/{kind}", params=params)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items", "nextPage"}
        sizes.append(len(body["items"]))
        seen.extend(label(kind, item) for item in body["items"])
        token = body["nextPage"]
        if token is None:
            break
    assert sizes == [10, 10, 5]
    assert seen == [f"{word} {i}" for i in range(25)]


async def test_entries_keep_their_wire_shape(api: Any) -> None:
    op_id = await finished_with_entries(api, 1)
    logs = (await api.client.get(f"/v1/operations/{op_id}/logs")).json()["items"]
    assert logs[0]["level"] == "INFO" and logs[0]["timestamp"].endswith("Z")
    resources = (await api.client.get(f"/v1/operations/{op_id}/resources")).json()["items"]
    assert resources[0]["entityType"] == "file"
    assert resources[0]["actionType"] == "CREATED"
    errors = (await api.client.get(f"/v1/operations/{op_id}/errors")).json()
    assert errors["items"][0]["code"] == "Oops"
    assert errors["nextPage"] is None


async def test_entries_of_a_fresh_operation_are_empty(api: Any) -> None:
    op_id = (await api.submit()).json()["id"]
    for kind in KINDS:
        body = (await api.client.get(f"/v1/operations/{op_id}/{kind}")).json()
        assert body == {"items": [], "nextPage": None}


async def test_entry_token_of_another_list_is_400(api: Any) -> None:
    op_id = await finished_with_entries(api)
    other = await finished_with_entries(api)
    token = (await api.client.get(f"/v1/operations/{op_id}/logs", params={"limit": 5})).json()[
        "nextPage"
    ]
    for path in (f"{op_id}/errors", f"{other}/logs"):
        response = await api.client.get(f"/v1/operations/{path}", params={"page": token})
        assert response.status_code == 400
        assert response.json()["error"]["target"] == "page"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"page": "zzz"}])
async def test_bad_entry_parameters_are_400(api: Any, params: dict[str, Any]) -> None:
    op_id = (await api.submit()).json()["id"]
    response = await api.client.get(f"/v1/operations/{op_id}/logs", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidInput"
    assert error["target"] in {"limit", "page"}
