"""POST /v1/operations and GET /v1/operations/{id}: acceptance, headers, idempotency, refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from longrun.model import Progress, Status
from longrun.store.base import Update

ERROR_KEYS = {"code", "message", "target", "details"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape with this status and code, and no Retry-After."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["code"] == code
    assert "retry-after" not in response.headers
    error: dict[str, Any] = body["error"]
    return error


async def test_submit_answers_202_with_absolute_locations(api: Any) -> None:
    response = await api.submit(input={"message": "hello", "count": 2})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "ACCEPTED"
    assert body["operationType"] == "test.echo"
    assert body["compartmentId"] == "default"
    assert body["input"] == {"message": "hello", "count": 2}
    assert body["maxAttempts"] == 2  # the type's default
    url = f"http://test/v1/operations/{body['id']}"
    assert response.headers["location"] == url
    assert response.headers["operation-location"] == url
    assert int(response.headers["retry-after"]) >= 1
    stored = await api.store.get(body["id"])
    assert stored is not None and stored.status is Status.ACCEPTED


async def test_submit_uses_public_url_and_request_overrides(api_factory: Any) -> None:
    async with api_factory(public_url="https://ops.example.com/base/") as api:
        response = await api.submit(maxAttempts=5, compartmentId="team.a:1")
        assert response.status_code == 202
        body = response.json()
        assert body["maxAttempts"] == 5
        assert body["compartmentId"] == "team.a:1"
        expected = f"https://ops.example.com/base/v1/operations/{body['id']}"
        assert response.headers["location"] == expected
        assert response.headers["operation-location"] == expected


async def test_get_has_retry_after_until_terminal(api: Any) -> None:
    op_id = (await api.submit()).json()["id"]
    response = await api.client.get(f"/v1/operations/{op_id}")
    assert response.status_code == 200
    assert response.json()["id"] == op_id
    assert response.headers["retry-after"] == "1"  # nothing known about its rate yet
    await api.run(op_id, Status.SUCCEEDED, result={"ok": True})
    done = await api.client.get(f"/v1/operations/{op_id}")
    assert done.status_code == 200
    assert done.json()["status"] == "SUCCEEDED"
    assert done.json()["result"] == {"ok": True}
    assert "retry-after" not in done.headers


async def test_get_retry_after_follows_the_eta(api: Any) -> None:
    op_id = (await api.submit()).json()["id"]
    lease = await api.start(op_id)
    eta = api.clock.now() + timedelta(seconds=300)
    update = Update(
        percent_complete=10.0, progress=Progress(items_done=1), estimated_completion_time=eta
    )
    await api.store.heartbeat(op_id, lease, api.clock.now(), 30.0, update)
    response = await api.client.get(f"/v1/operations/{op_id}")
    assert response.json()["status"] == "IN_PROGRESS"
    assert response.headers["retry-after"] == "30"


async def test_idempotent_replay_answers_200_with_the_same_operation(api: Any) -> None:
    first = await api.submit(idempotency_key="key-1", input={"message": "a"})
    assert first.status_code == 202
    # the same request, with the defaulted field spelled out, is the same request
    again = await api.submit(idempotency_key="key-1", input={"message": "a", "count": 1})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert len(await api.all_ops()) == 1


async def test_idempotency_key_with_another_request_is_409(api: Any) -> None:
    first = await api.submit(idempotency_key="key-2", input={"message": "a"})
    response = await api.submit(idempotency_key="key-2", input={"message": "b"})
    error = assert_error(response, 409, "IdempotencyMismatch")
    assert error["target"] == "idempotencyKey"
    ops = await api.all_ops()
    assert [op.id for op in ops] == [first.json()["id"]]
    assert ops[0].input == {"message": "a", "count": 1}


async def test_same_key_in_another_compartment_is_another_operation(api: Any) -> None:
    a = await api.submit(idempotency_key="k", compartmentId="a")
    b = await api.submit(idempotency_key="k", compartmentId="b")
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["id"] != b.json()["id"]


async def test_malformed_json_is_400_and_writes_nothing(api: Any) -> None:
    response = await api.client.post(
        "/v1/operations",
        content=b'{"operationType": ',
        headers={"content-type": "application/json"},
    )
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "body"
    assert await api.all_ops() == []


async def test_body_that_is_not_json_is_400(api: Any) -> None:
    response = await api.client.post(
        "/v1/operations", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert_error(response, 400, "InvalidInput")
    assert await api.all_ops() == []


async def test_unknown_type_is_400_and_writes_nothing(api: Any) -> None:
    response = await api.submit(operationType="no.such.type")
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "operationType"
    assert await api.all_ops() == []


async def test_input_failing_its_schema_names_each_field(api: Any) -> None:
    response = await api.submit(input={"message": "", "count": 99})
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "input"
    targets = {d["target"] for d in error["details"]}
    assert targets == {"input.message", "input.count"}
    assert all(set(d) >= {"code", "target", "message"} for d in error["details"])
    assert await api.all_ops() == []


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"maxAttempts": 0}, "maxAttempts"),
        ({"compartmentId": "has space"}, "compartmentId"),
        ({"compartmentId": ""}, "compartmentId"),
        ({"compartmentId": "x" * 129}, "compartmentId"),
        ({"notBefore": "2030-01-01T00:00:00"}, "notBefore"),  # no offset
        ({"unknownField": 1}, "unknownField"),
        ({"input": [1, 2]}, "input"),
        ({"parentId": "01900000-0000-7000-8000-000000000000"}, "parentId"),
    ],
)
async def test_bad_fields_are_400_with_their_target(
    api: Any, body: dict[str, Any], target: str
) -> None:
    response = await api.submit(**body)
    error = assert_error(response, 400, "InvalidInput")
    assert target in {error["target"], *(d["target"] for d in error["details"])}
    assert await api.all_ops() == []


async def test_deadline_before_not_before_is_400(api: Any) -> None:
    start = api.clock.now() + timedelta(hours=2)
    response = await api.submit(
        notBefore=start.isoformat(), deadline=(start - timedelta(hours=1)).isoformat()
    )
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "deadline"
    assert await api.all_ops() == []


async def test_schedule_and_parent_are_stored(api: Any) -> None:
    parent = (await api.submit(compartmentId="c1")).json()
    start = api.clock.now() + timedelta(hours=1)
    response = await api.submit(
        compartmentId="c1",
        parentId=parent["id"],
        notBefore=start.isoformat(),
        deadline=(start + timedelta(hours=1)).isoformat(),
    )
    assert response.status_code == 202
    child = response.json()
    assert child["parentId"] == parent["id"]
    assert child["notBefore"].endswith("Z")
    refreshed = (await api.client.get(f"/v1/operations/{parent['id']}")).json()
    assert refreshed["children"] == [child["id"]]


async def test_parent_in_another_compartment_is_refused(api: Any) -> None:
    parent = (await api.submit(compartmentId="c1")).json()
    response = await api.submit(compartmentId="c2", parentId=parent["id"])
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "parentId"
    assert len(await api.all_ops()) == 1


async def test_idempotency_key_over_256_chars_is_400(api: Any) -> None:
    response = await api.submit(idempotency_key="k" * 257)
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "Idempotency-Key"
    assert await api.all_ops() == []


async def test_oversized_body_by_content_length_is_413(api: Any) -> None:
    response = await api.submit(input={"message": "x" * 5000})
    error = assert_error(response, 413, "PayloadTooLarge")
    assert error["target"] == "body"
    assert await api.all_ops() == []


async def test_oversized_streamed_body_is_413(api: Any) -> None:
    async def chunks() -> Any:
        yield b'{"operationType": "test.echo", "input": {"message": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}}'

    response = await api.client.post(
        "/v1/operations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PayloadTooLarge")
    assert await api.all_ops() == []


async def test_streamed_body_under_the_limit_is_accepted(api: Any) -> None:
    async def chunks() -> Any:
        yield b'{"operationType": "test.echo", '
        yield b'"input": {"message": "small"}}'

    response = await api.client.post(
        "/v1/operations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202
    assert len(await api.all_ops()) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/operations/01900000-0000-7000-8000-000000000000",  # well formed, unknown
        "/v1/operations/not-an-id",
        "/v1/operations/01900000-0000-7000-8000-00000000000Z",
        "/v1/operations/01900000-0000-7000-8000-000000000000:wait?timeout=0",
        "/v1/operations/nope/logs",
    ],
)
async def test_unknown_and_malformed_ids_are_404(api: Any, path: str) -> None:
    error = assert_error(await api.client.get(path), 404, "NotFound")
    assert error["message"]
