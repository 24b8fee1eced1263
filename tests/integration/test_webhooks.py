"""Webhooks against a real HTTP receiver on 127.0.0.1: signed, retried, recorded, never blocking."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from longrun.api import create_app
from longrun.model import Status
from tests.integration.conftest import Api, make_test_app, running_api, settings_for, wait_until

SECRET = "per-callback-secret-0123"
SERVER_SECRET = "server-wide-secret-4567"


@dataclass
class Receiver:
    """A real HTTP server: records each POST; ``/flaky`` fails twice, ``/hang`` holds the reply."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    flaky_left: int = 2
    release: threading.Event = field(default_factory=threading.Event)

    def posts(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [r for r in self.received if r[0] == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append((self.path, dict(self.headers.items()), body))
            status = 200
            if self.path == "/flaky" and receiver.flaky_left > 0:
                receiver.flaky_left -= 1
                status = 500
            elif self.path == "/hang":
                receiver.release.wait(20)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def hooks(tmp_path: Path, db_url: str) -> AsyncIterator[Api]:
    """The app with its embedded worker, fast retries, a short POST timeout and a server secret."""
    settings = settings_for(
        tmp_path,
        db=db_url,
        embedded_worker=True,
        worker_slots=4,
        poll_interval=0.05,
        webhook_retry_base=0.05,
        webhook_timeout=2.0,
        webhook_secret=SERVER_SECRET,
    )
    async for api in running_api(create_app(settings, app=make_test_app())):
        yield api


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in headers["Longrun-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(fields["v1"], expected.hexdigest())


async def _submit(api: Api, callback: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {"input": {"message": "hi"}}
    if callback is not None:
        body["callback"] = callback
    response = await api.submit(**body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _until(check: Callable[[], bool]) -> Callable[[], Any]:
    async def probe() -> bool:
        return check()

    return probe


async def test_a_terminal_operation_is_posted_signed(hooks: Api, receiver: Receiver) -> None:
    own = await _submit(hooks, {"url": f"{receiver.url}/own", "secret": SECRET})
    shared = await _submit(hooks, {"url": f"{receiver.url}/shared"})
    await wait_until(_until(lambda: len(receiver.received) >= 2), 20)
    for path, secret, op_id in (("/own", SECRET, own), ("/shared", SERVER_SECRET, shared)):
        [(_, headers, body)] = receiver.posts(path)
        assert _signed(secret, headers, body)
        assert not _signed("wrong-secret-000000", headers, body)
        sent = json.loads(body)
        assert sent["id"] == op_id and sent["status"] == Status.SUCCEEDED.value

    async def settled() -> bool:  # the receiver answered before the attempt was recorded
        callback = await hooks.store.get_callback(own)
        return callback is not None and callback.state == "DELIVERED"

    await wait_until(settled, 10)
    listing = (await hooks.client.get(f"/v1/operations/{own}/deliveries")).json()
    assert listing["callback"]["state"] == "DELIVERED" and "secret" not in listing["callback"]
    assert [(i["attempt"], i["statusCode"], i["outcome"]) for i in listing["items"]] == [
        (1, 200, "DELIVERED")
    ]


async def test_failures_are_retried_with_backoff_and_recorded(
    hooks: Api, receiver: Receiver
) -> None:
    op_id = await _submit(hooks, {"url": f"{receiver.url}/flaky", "secret": SECRET})

    async def delivered() -> bool:
        cb = await hooks.store.get_callback(op_id)
        return cb is not None and cb.state == "DELIVERED"

    await wait_until(delivered, 20)
    listing = (await hooks.client.get(f"/v1/operations/{op_id}/deliveries")).json()
    assert [(i["attempt"], i["statusCode"], i["outcome"]) for i in listing["items"]] == [
        (1, 500, "RETRY"),
        (2, 500, "RETRY"),
        (3, 200, "DELIVERED"),
    ]
    times = [i["time"] for i in listing["items"]]
    assert times == sorted(times) and len(receiver.posts("/flaky")) == 3


async def test_a_hanging_receiver_delays_nobody(hooks: Api, receiver: Receiver) -> None:
    hung = await _submit(hooks, {"url": f"{receiver.url}/hang", "secret": SECRET})
    await wait_until(_until(lambda: len(receiver.posts("/hang")) >= 1), 20)
    others = [
        await _submit(hooks, {"url": f"{receiver.url}/ok", "secret": SECRET}) for _ in range(3)
    ]
    await wait_until(_until(lambda: len(receiver.posts("/ok")) == 3), 5)  # while /hang holds
    for op_id in others:
        op = await hooks.store.get(op_id)
        assert op is not None and op.status is Status.SUCCEEDED
    assert not receiver.release.is_set()

    async def attempts(count: int, outcome: str) -> bool:
        items = await hooks.store.list_deliveries(hung)
        return len(items) >= count and items[count - 1].outcome == outcome

    await wait_until(lambda: attempts(1, "RETRY"), 10)  # the POST timed out after 2 s
    first = (await hooks.store.list_deliveries(hung))[0]
    assert first.status_code is None and "Timeout" in (first.error or "")
    receiver.release.set()  # the receiver answers the retry at once
    await wait_until(lambda: attempts(2, "DELIVERED"), 20)


@pytest.mark.parametrize(
    "callback",
    [
        {"url": "ftp://127.0.0.1/x", "secret": SECRET},
        {"url": "file:///etc/passwd", "secret": SECRET},
        {"url": "not a url", "secret": SECRET},
        {"url": "/relative/path", "secret": SECRET},
        {"url": "http://user:pass@127.0.0.1/x", "secret": SECRET},
        {"url": "https://token@example.com/x", "secret": SECRET},
        {"url": "https://example.com/x", "secret": "short"},
        {"url": "https://example.com/x", "secret": SECRET, "extra": 1},
    ],
)
async def test_bad_callbacks_are_refused_and_nothing_is_written(
    api: Api, callback: dict[str, Any]
) -> None:
    response = await api.submit(callback=callback)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidInput"
    assert await api.all_ops() == []


async def test_a_callback_needs_a_secret_somewhere(api: Api) -> None:
    response = await api.submit(callback={"url": "https://example.com/x"})
    assert response.status_code == 400 and "secret" in response.json()["error"]["message"]
    assert await api.all_ops() == []


async def test_deliveries_of_an_operation_without_callback(api: Api) -> None:
    op_id = (await api.submit()).json()["id"]
    assert (await api.client.get(f"/v1/operations/{op_id}/deliveries")).json() == {
        "callback": None,
        "items": [],
    }
    missing = await api.client.get("/v1/operations/01a0a0a0-0000-7000-8000-000000000000/deliveries")
    assert missing.status_code == 404
