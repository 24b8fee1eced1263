"""GET /v1/operations: filters, stable pages while operations are inserted, bad tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from longrun.model import Status


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "target", "details"}
    assert error["code"] == code
    assert "retry-after" not in response.headers
    return error


async def ids_of(api: Any, **params: Any) -> list[str]:
    response = await api.client.get("/v1/operations", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "nextPage"}
    return [item["id"] for item in body["items"]]


async def submit_ids(api: Any, n: int, **body: Any) -> list[str]:
    ids = []
    for _ in range(n):
        response = await api.submit(**body)
        assert response.status_code == 202
        ids.append(response.json()["id"])
    return ids


async def test_list_is_newest_first_and_asc_on_request(api: Any) -> None:
    ids = await submit_ids(api, 3)
    assert await ids_of(api) == ids[::-1]
    assert await ids_of(api, order="asc") == ids
    body = (await api.client.get("/v1/operations")).json()
    assert body["nextPage"] is None
    assert body["items"][0]["operationType"] == "test.echo"


async def test_list_filters_by_status_type_and_compartment(api: Any) -> None:
    a1, a2 = await submit_ids(api, 2, compartmentId="a")
    (b1,) = await submit_ids(api, 1, compartmentId="b")
    (free,) = await submit_ids(api, 1, compartmentId="a", operationType="test.free", input={})
    await api.client.post(f"/v1/operations/{a2}:cancel")
    await api.client.post(f"/v1/operations/{b1}:hold")

    assert await ids_of(api, compartmentId="a") == [free, a2, a1]
    assert await ids_of(api, compartmentId=["a", "b"]) == [free, b1, a2, a1]
    assert await ids_of(api, status="CANCELED") == [a2]
    assert await ids_of(api, status=["ON_HOLD", "CANCELED"]) == [b1, a2]
    assert await ids_of(api, operationType="test.free") == [free]
    assert await ids_of(api, operationType="test.echo", status="ACCEPTED") == [a1]
    assert await ids_of(api, compartmentId="nobody") == []


async def test_list_filters_by_parent(api: Any) -> None:
    (parent,) = await submit_ids(api, 1)
    children = await submit_ids(api, 2, parentId=parent)
    assert await ids_of(api, parentId=parent, order="asc") == children


async def test_list_filters_by_time_range(api: Any) -> None:
    t0 = api.clock.now()
    (early,) = await submit_ids(api, 1)
    api.clock.advance(60)
    (middle,) = await submit_ids(api, 1)
    api.clock.advance(60)
    (late,) = await submit_ids(api, 1)
    after = (t0 + timedelta(seconds=30)).isoformat()
    before = (t0 + timedelta(seconds=90)).isoformat()
    assert await ids_of(api, acceptedAfter=after) == [late, middle]
    assert await ids_of(api, acceptedBefore=before) == [middle, early]
    assert await ids_of(api, acceptedAfter=after, acceptedBefore=before) == [middle]
    # acceptedAfter is inclusive, acceptedBefore exclusive
    exact = (t0 + timedelta(seconds=60)).isoformat()
    assert await ids_of(api, acceptedAfter=exact, acceptedBefore=exact) == []
    assert await ids_of(api, acceptedAfter=exact) == [late, middle]


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_pages_stay_correct_while_operations_are_inserted(api: Any, order: str) -> None:
    existing = await submit_ids(api, 25)
    expected = existing[::-1] if order == "desc" else existing
    seen: list[str] = []
    inserted: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10, "order": order}
        if token:
            params["page"] = token
        body = (await api.client.get("/v1/operations", params=params)).json()
        seen.extend(item["id"] for item in body["items"])
        pages += 1
        token = body["nextPage"]
        if token is None:
            break
        inserted += await submit_ids(api, 3)  # new rows between page fetches
        assert pages < 20
    assert len(seen) == len(set(seen)), "no duplicates"
    old = [i for i in seen if i in set(existing)]
    assert old == expected, "every row that existed, once, in order"
    # newest first never shows rows inserted after the first page; oldest first shows them last
    new = [i for i in seen if i not in set(existing)]
    assert new == ([] if order == "desc" else inserted[: len(new)])


async def test_last_page_has_null_next_page(api: Any) -> None:
    await submit_ids(api, 4)
    first = (await api.client.get("/v1/operations", params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["nextPage"]
    second = (
        await api.client.get("/v1/operations", params={"limit": 2, "page": first["nextPage"]})
    ).json()
    assert len(second["items"]) == 2
    assert second["nextPage"] is None


@pytest.mark.parametrize("token", ["garbage!", "eyJ4IjoxfQ", "bm90IGpzb24", "", "A" * 600])
async def test_illegal_page_token_is_400_page(api: Any, token: str) -> None:
    await submit_ids(api, 1)
    response = await api.client.get("/v1/operations", params={"page": token})
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "page"


async def test_token_of_other_filters_is_400_page(api: Any) -> None:
    await submit_ids(api, 3, compartmentId="a")
    token = (await api.client.get("/v1/operations", params={"limit": 1})).json()["nextPage"]
    assert token
    other = {"limit": 1, "page": token, "compartmentId": "a"}
    error = assert_error(await api.client.get("/v1/operations", params=other), 400, "InvalidInput")
    assert error["target"] == "page"
    flipped = {"limit": 1, "page": token, "order": "asc"}
    assert_error(await api.client.get("/v1/operations", params=flipped), 400, "InvalidInput")


@pytest.mark.parametrize(
    ("params", "target"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"status": "DONE"}, "status"),
        ({"order": "sideways"}, "order"),
        ({"acceptedAfter": "yesterday"}, "acceptedAfter"),
        ({"compartmentId": "bad id"}, "compartmentId"),
    ],
)
async def test_bad_list_parameters_are_400(api: Any, params: dict[str, Any], target: str) -> None:
    response = await api.client.get("/v1/operations", params=params)
    error = assert_error(response, 400, "InvalidInput")
    assert target in {error["target"], *(d["target"] for d in error["details"])}


async def test_limit_bounds_are_allowed(api: Any) -> None:
    await submit_ids(api, 2)
    assert len(await ids_of(api, limit=1)) == 1
    assert len(await ids_of(api, limit=1000)) == 2


async def test_statuses_of_listed_operations_are_current(api: Any) -> None:
    (op_id,) = await submit_ids(api, 1)
    await api.run(op_id, Status.FAILED)
    body = (await api.client.get("/v1/operations", params={"status": "FAILED"})).json()
    assert [i["status"] for i in body["items"]] == ["FAILED"]
