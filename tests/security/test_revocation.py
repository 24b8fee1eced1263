"""Credentials that stop being valid end what is open, and every mutation is audited."""

from __future__ import annotations

import pytest

from longrun.auth import Role, new_key
from longrun.model import utcnow
from tests.integration.sse import EventReader
from tests.security.conftest import Secured, token

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_key_revoked_while_its_stream_is_open_ends_the_stream(secured: Secured) -> None:
    text, stored = new_key(Role.READER, ["own"], utcnow())
    await secured.store.create_key(stored)
    headers = {"Authorization": f"Bearer {text}"}
    async with (
        secured.client(None) as http,
        http.stream("GET", "/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        reader = EventReader(response)
        assert (await reader.next()).event == "ready"
        await secured.store.revoke_key(stored.id, utcnow())
        last = await reader.next(timeout=5)
        assert last is not None and last.event == "unauthorized"
        assert await reader.next(timeout=5) is None  # the stream ended
    async with secured.client(None) as http:
        again = await http.get("/v1/operations", headers=headers)
        assert again.status_code == 401
        assert again.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_that_expires_during_a_wait_is_cut_off(secured: Secured) -> None:
    service = secured.app.state.service
    op, _ = await service.submit("test.echo", {"message": "x"}, compartment_id="own")
    headers = {"Authorization": f"Bearer {token('reader', ['own'], ttl=1)}"}
    async with secured.client(None) as http:
        response = await http.get(f"/v1/operations/{op.id}:wait?timeout=30", headers=headers)
    assert response.status_code == 401  # well before the 30 s wait would have ended


async def test_mutations_are_audited_with_caller_and_outcome(secured: Secured) -> None:
    async with secured.client("operator") as http:
        created = await http.post(
            "/v1/operations",
            json={"operationType": "test.echo", "input": {"message": "a"}, "compartmentId": "own"},
        )
        refused = await http.delete(f"/v1/operations/{created.json()['id']}")
    assert (created.status_code, refused.status_code) == (202, 403)
    async with secured.client("admin") as http:
        page = (await http.get("/v1/audit", params={"limit": 50})).json()
    caller = f"key:{secured.key_ids['operator']}"
    mine = [
        e for e in page["items"] if e["caller"] == caller and e["target"] == created.json()["id"]
    ]
    assert {(e["action"], e["outcome"], e["status"]) for e in mine} == {
        ("submit", "ok", 202),
        ("delete", "Forbidden", 403),
    }
    async with secured.client("reader") as http:
        assert (await http.get("/v1/audit")).status_code == 403


async def test_secrets_never_come_back_in_errors(secured: Secured) -> None:
    secret = "lrk_0123456789abcdef_" + "S" * 43
    async with secured.client(None) as http:
        response = await http.get("/v1/operations", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401 and "SSSS" not in response.text
