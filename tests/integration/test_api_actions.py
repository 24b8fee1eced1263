"""Cancel, hold, release, delete and the bounded :wait long poll."""

from __future__ import annotations

import asyncio
import time
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


async def new_op(api: Any) -> str:
    response = await api.submit()
    assert response.status_code == 202
    op_id: str = response.json()["id"]
    return op_id


async def status_of(api: Any, op_id: str) -> Status:
    op = await api.store.get(op_id)
    assert op is not None
    return Status(op.status)


async def test_cancel_accepted_becomes_canceled(api: Any) -> None:
    op_id = await new_op(api)
    response = await api.client.post(f"/v1/operations/{op_id}:cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELED"
    assert response.json()["timeFinished"] is not None
    assert await status_of(api, op_id) is Status.CANCELED


async def test_cancel_in_progress_becomes_canceling(api: Any) -> None:
    op_id = await new_op(api)
    await api.start(op_id)
    response = await api.client.post(f"/v1/operations/{op_id}:cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELING"


async def test_cancel_terminal_is_409_and_changes_nothing(api: Any) -> None:
    op_id = await new_op(api)
    await api.run(op_id, Status.SUCCEEDED)
    before = await api.store.get(op_id)
    error = assert_error(
        await api.client.post(f"/v1/operations/{op_id}:cancel"), 409, "IllegalTransition"
    )
    assert error["message"]
    assert await api.store.get(op_id) == before


async def test_hold_and_release(api: Any) -> None:
    op_id = await new_op(api)
    held = await api.client.post(f"/v1/operations/{op_id}:hold", json={"reason": "maintenance"})
    assert held.status_code == 200
    assert held.json()["status"] == "ON_HOLD"
    assert await status_of(api, op_id) is Status.ON_HOLD
    # only from ACCEPTED
    assert_error(await api.client.post(f"/v1/operations/{op_id}:hold"), 409, "IllegalTransition")
    released = await api.client.post(f"/v1/operations/{op_id}:release")
    assert released.status_code == 200
    assert released.json()["status"] == "ACCEPTED"
    # only from ON_HOLD
    assert_error(await api.client.post(f"/v1/operations/{op_id}:release"), 409, "IllegalTransition")
    assert await status_of(api, op_id) is Status.ACCEPTED


async def test_hold_without_body_and_cancel_of_held(api: Any) -> None:
    op_id = await new_op(api)
    assert (await api.client.post(f"/v1/operations/{op_id}:hold")).status_code == 200
    canceled = await api.client.post(f"/v1/operations/{op_id}:cancel")
    assert canceled.json()["status"] == "CANCELED"


async def test_hold_with_bad_body_is_400_and_changes_nothing(api: Any) -> None:
    op_id = await new_op(api)
    response = await api.client.post(f"/v1/operations/{op_id}:hold", json={"reason": 5})
    assert_error(response, 400, "InvalidInput")
    assert await status_of(api, op_id) is Status.ACCEPTED


async def test_delete_terminal_is_204_then_410(api: Any) -> None:
    op_id = await new_op(api)
    await api.run(op_id, Status.FAILED)
    response = await api.client.delete(f"/v1/operations/{op_id}")
    assert response.status_code == 204
    assert response.content == b""
    gone = await api.client.get(f"/v1/operations/{op_id}")
    error = assert_error(gone, 410, "Gone")
    assert error["details"][0]["purgedAt"].endswith("Z")
    assert error["details"][0]["status"] == "FAILED"
    assert_error(await api.client.get(f"/v1/operations/{op_id}/logs"), 410, "Gone")
    assert_error(await api.client.post(f"/v1/operations/{op_id}:cancel"), 410, "Gone")
    assert_error(await api.client.delete(f"/v1/operations/{op_id}"), 410, "Gone")
    assert await api.all_ops() == []


async def test_delete_non_terminal_is_409_and_keeps_it(api: Any) -> None:
    op_id = await new_op(api)
    assert_error(await api.client.delete(f"/v1/operations/{op_id}"), 409, "IllegalTransition")
    assert await status_of(api, op_id) is Status.ACCEPTED


@pytest.mark.parametrize("verb", [":cancel", ":hold", ":release"])
async def test_actions_on_unknown_ids_are_404(api: Any, verb: str) -> None:
    for op_id in ("01900000-0000-7000-8000-000000000000", "bogus"):
        assert_error(await api.client.post(f"/v1/operations/{op_id}{verb}"), 404, "NotFound")
    assert_error(await api.client.delete("/v1/operations/bogus"), 404, "NotFound")


async def test_wait_returns_the_current_state_at_the_bound(api: Any) -> None:
    op_id = await new_op(api)
    started = time.monotonic()
    response = await api.client.get(f"/v1/operations/{op_id}:wait", params={"timeout": 0.4})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "ACCEPTED"
    assert response.headers["retry-after"] == "1"
    assert 0.35 <= elapsed < 5


async def test_wait_returns_at_once_when_terminal(api: Any) -> None:
    op_id = await new_op(api)
    await api.run(op_id, Status.SUCCEEDED)
    started = time.monotonic()
    response = await api.client.get(f"/v1/operations/{op_id}:wait", params={"timeout": 30})
    assert time.monotonic() - started < 2
    assert response.json()["status"] == "SUCCEEDED"
    assert "retry-after" not in response.headers


async def test_wait_wakes_up_on_a_change(api: Any) -> None:
    op_id = await new_op(api)
    waiting = asyncio.create_task(
        api.client.get(f"/v1/operations/{op_id}:wait", params={"timeout": 20})
    )
    done, _ = await asyncio.wait({waiting}, timeout=0.3)
    assert not done, "the long poll is still waiting for a change"
    started = time.monotonic()
    await api.service.cancel(op_id)
    response = await asyncio.wait_for(waiting, timeout=10)
    assert response.json()["status"] == "CANCELED"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("timeout", ["-1", "61", "soon"])
async def test_wait_timeout_out_of_range_is_400(api: Any, timeout: str) -> None:
    op_id = await new_op(api)
    response = await api.client.get(f"/v1/operations/{op_id}:wait", params={"timeout": timeout})
    error = assert_error(response, 400, "InvalidInput")
    assert error["target"] == "timeout"


async def test_wait_default_timeout_returns_when_terminal(api: Any) -> None:
    op_id = await new_op(api)
    await api.client.post(f"/v1/operations/{op_id}:cancel")
    response = await api.client.get(f"/v1/operations/{op_id}:wait")
    assert response.json()["status"] == "CANCELED"
