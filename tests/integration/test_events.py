"""Server-sent events over real HTTP (uvicorn in the test's loop) on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from longrun.api import create_app
from longrun.api.events import ChangeHub
from tests.integration.conftest import make_test_app, settings_for, wait_until
from tests.integration.sse import EventReader, serve_app


class Live:
    """A served app with an embedded worker, and an HTTP client on it."""

    def __init__(self, url: str, http: httpx.AsyncClient, hub: ChangeHub) -> None:
        self.url = url
        self.http = http
        self.hub = hub

    async def submit(self, operation_type: str = "test.echo", **body: Any) -> dict[str, Any]:
        payload = {"operationType": operation_type, "input": {"message": "hi"}, **body}
        if operation_type != "test.echo":
            payload["input"] = body.pop("input", {})
        response = await self.http.post("/v1/operations", json=payload)
        assert response.status_code == 202, response.text
        data: dict[str, Any] = response.json()
        return data

    def stream(self, path: str, **headers: str) -> Any:
        return self.http.stream("GET", path, headers={"Accept": "text/event-stream", **headers})


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    settings = settings_for(tmp_path, embedded_worker=True, worker_slots=4, poll_interval=0.05)
    app = create_app(settings, app=make_test_app())
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as http:
        yield Live(url, http, app.state.events)


async def test_operation_stream_follows_to_the_end_and_closes(live: Live) -> None:
    op = await live.submit()
    async with live.stream(f"/v1/operations/{op['id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        seen = []
        while (event := await reader.next()) is not None:
            assert event.event == "operation"
            seen.append(event)
    body = seen[-1].json()
    assert body["status"] == "SUCCEEDED"
    assert body["result"] == {"echo": "hi"}
    versions = [int(e.id.rpartition(":")[2]) for e in seen if e.id]
    assert [e.id.rpartition(":")[0] for e in seen if e.id] == [op["id"]] * len(seen)
    assert versions == sorted(set(versions)), "ids are <id>:<version>, increasing, no repeats"
    assert versions[-1] == body["version"]


async def test_progress_and_cancel_arrive_live(live: Live) -> None:
    op = await live.submit("test.until_canceled")
    path = f"/v1/operations/{op['id']}/events"
    async with live.stream(path) as response:
        reader = EventReader(response)
        first = await reader.until(lambda o: o["percentComplete"] > 0)
        later = await reader.until(lambda o: o["percentComplete"] > first.json()["percentComplete"])
        assert later.json()["status"] == "IN_PROGRESS"
        assert any(log["message"] == "started" for log in later.json()["logs"])
        canceled = await live.http.post(f"/v1/operations/{op['id']}:cancel")
        assert canceled.status_code == 200
        end = await reader.until(lambda o: o["status"] == "CANCELED")
        assert await reader.next() is None, "the stream closes after the terminal state"
    # reconnecting at the last version seen: nothing more will come
    async with live.stream(path, **{"Last-Event-ID": end.id or ""}) as again:
        assert again.status_code == 204
    # reconnecting at an older version: only the newest state comes, then the end
    async with live.stream(path, **{"Last-Event-ID": first.id or ""}) as again:
        reader = EventReader(again)
        event = await reader.next()
        assert event is not None and event.json()["status"] == "CANCELED"
        assert await reader.next() is None


async def test_unknown_operation_is_404_before_streaming(live: Live) -> None:
    response = await live.http.get("/v1/operations/01J0000000000000000000000/events")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"
    assert live.hub.subscribers == 0


async def test_global_stream_filters_by_type_and_compartment(live: Live) -> None:
    query = "?operationType=test.echo&compartmentId=blue"
    async with live.stream("/v1/events" + query) as response:
        reader = EventReader(response)
        ready = await reader.next()
        assert ready is not None and ready.event == "ready" and ready.id is not None
        await live.submit("test.free", compartmentId="blue")
        await live.submit(compartmentId="red")
        wanted = await live.submit(compartmentId="blue")
        done = await reader.until(lambda o: o["status"] == "SUCCEEDED")
        assert done.json()["id"] == wanted["id"]
    assert int(done.id or 0) >= int(ready.id)


async def test_global_stream_resumes_from_last_event_id(live: Live) -> None:
    async with live.stream("/v1/events?operationType=test.echo") as response:
        reader = EventReader(response)
        first = await live.submit()
        event = await reader.until(lambda o: o["id"] == first["id"] and o["status"] == "SUCCEEDED")
    missed = await live.submit()  # submitted while no stream is open
    await wait_until(
        lambda: _status_is(live, missed["id"], "SUCCEEDED"),
        timeout=10,
    )
    headers = {"Last-Event-ID": event.id or ""}
    async with live.stream("/v1/events?operationType=test.echo", **headers) as response:
        reader = EventReader(response)
        caught = await reader.until(lambda o: o["id"] == missed["id"], timeout=5)
        assert caught.json()["status"] == "SUCCEEDED"


async def _status_is(live: Live, op_id: str, status: str) -> bool:
    response = await live.http.get(f"/v1/operations/{op_id}")
    return bool(response.json()["status"] == status)


async def test_streams_per_client_are_bounded(live: Live) -> None:
    live.hub.max_streams_per_client = 2
    async with live.stream("/v1/events") as one, live.stream("/v1/events") as two:
        assert one.status_code == two.status_code == 200
        third = await live.http.get("/v1/events")
        assert third.status_code == 429
        assert third.json()["error"]["code"] == "RateLimited"
    await wait_until(lambda: _no_subscribers(live), timeout=5)


async def test_without_auth_each_address_has_its_own_stream_budget(live: Live) -> None:
    """With auth off every caller is the same anonymous admin: the bound goes by address."""
    live.hub.max_streams_per_client = 1
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        live.stream("/v1/events") as mine,
        httpx.AsyncClient(base_url=live.url, transport=other, timeout=20) as elsewhere,
        elsewhere.stream("GET", "/v1/events") as theirs,
    ):
        reader = EventReader(mine)  # held, so the stream stays open while the others ask
        assert (await reader.next()).event == "ready"  # type: ignore[union-attr]
        assert theirs.status_code == 200
        assert (await live.http.get("/v1/events")).status_code == 429
    await wait_until(lambda: _no_subscribers(live), timeout=5)


async def _no_subscribers(live: Live) -> bool:
    return live.hub.subscribers == 0


async def test_keep_alive_comments_flow_while_idle(live: Live) -> None:
    live.hub.keepalive = 0.1
    async with live.stream("/v1/events?compartmentId=quiet") as response:
        reader = EventReader(response)
        assert (await reader.next()).event == "ready"  # type: ignore[union-attr]
        assert await reader.comment(timeout=5) == "keep-alive"
        assert await reader.comment(timeout=5) == "keep-alive"


async def test_one_hub_pass_feeds_every_stream(live: Live) -> None:
    """Streams share the hub's reads: 20 streams do not make 20 reads per change."""
    readers = []
    async with httpx.AsyncClient(base_url=live.url, timeout=20) as http:
        live.hub.max_streams_per_client = 64
        contexts = [http.stream("GET", "/v1/events") for _ in range(20)]
        responses = [await c.__aenter__() for c in contexts]
        try:
            readers = [EventReader(r) for r in responses]
            for reader in readers:
                assert (await reader.next()).event == "ready"  # type: ignore[union-attr]
            passes = live.hub.passes
            op = await live.submit()
            for reader in readers:
                await reader.until(lambda o: o["id"] == op["id"] and o["status"] == "SUCCEEDED")
            # one submit, one claim, one finish: a handful of passes, not one per stream
            assert live.hub.passes - passes <= 8
        finally:
            for c in contexts:
                await c.__aexit__(None, None, None)


async def test_shutdown_ends_open_streams_cleanly(live: Live) -> None:
    op = await live.submit("test.until_canceled")
    async with live.stream(f"/v1/operations/{op['id']}/events") as response:
        reader = EventReader(response)
        await reader.until(lambda o: o["status"] == "IN_PROGRESS")
        live.hub.shutdown()
        while await reader.next() is not None:
            pass
        assert reader.ended
    refused = await live.http.get("/v1/events")
    assert refused.status_code == 429
    await live.http.post(f"/v1/operations/{op['id']}:cancel")  # let the worker stop at once
