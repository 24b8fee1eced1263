"""Client and AsyncClient against the real app: in-process over ASGI, and a real `longrun serve`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from longrun.api import create_app
from longrun.client import AsyncClient, Client, Unreachable
from longrun.config import Settings
from longrun.model import (
    Gone,
    IdempotencyMismatch,
    IllegalTransition,
    InvalidInput,
    NotFound,
    Status,
    WaitTimeout,
)
from tests.support import free_port as _free_port

LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
async def aclient(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    """An AsyncClient on the real app (built-in types, embedded worker) over ASGI."""
    settings = Settings(
        db=f"sqlite:///{tmp_path}/client.db",
        embedded_worker=True,
        poll_interval=0.05,
        flush_interval=0.05,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://test", transport=transport, poll_interval=0.05) as client:
            yield client


async def test_hash_a_file_end_to_end(aclient: AsyncClient, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    target = tmp_path / "data.bin"
    target.write_bytes(data)
    op = await aclient.submit(
        "demo.hash", {"path": str(target), "algorithm": "blake2b", "chunk_size": 65536}
    )
    assert op.status is Status.ACCEPTED and op.operation_type == "demo.hash"
    done = await aclient.wait(op.id, timeout=20)
    assert done.status is Status.SUCCEEDED, done.errors
    assert done.result == {
        "digest": hashlib.blake2b(data).hexdigest(),
        "algorithm": "blake2b",
        "size": len(data),
    }
    assert done.resource_location == str(target.resolve())
    assert done.percent_complete == 100
    assert done.progress.bytes_done == len(data) == done.progress.bytes_total
    resources = [r async for r in aclient.resources(op.id)]
    assert [(r.entity_type, r.action_type.value, r.identifier) for r in resources] == [
        ("file", "RELATED", str(target.resolve()))
    ]
    messages = [entry.message async for entry in aclient.logs(op.id)]
    assert any("hashing" in m for m in messages) and any(
        done.result["digest"] in m for m in messages
    )


async def test_a_missing_file_fails_with_file_not_found(
    aclient: AsyncClient, tmp_path: Path
) -> None:
    op = await aclient.submit("demo.hash", {"path": str(tmp_path / "nope")})
    done = await aclient.wait(op.id, timeout=20)
    assert done.status is Status.FAILED
    assert [e.code for e in done.errors] == ["FileNotFound"]
    assert [e.code async for e in aclient.errors(op.id)] == ["FileNotFound"]


async def test_refusals_come_back_as_their_own_classes(aclient: AsyncClient) -> None:
    with pytest.raises(InvalidInput) as bad:
        await aclient.submit("demo.sleep", {"seconds": 99999})
    assert any(d.get("target", "").endswith("seconds") for d in bad.value.details)
    with pytest.raises(InvalidInput):
        await aclient.submit("no.such.type", {})
    with pytest.raises(NotFound):
        await aclient.get("01a0a0a0-0000-7000-8000-000000000000")


async def test_idempotent_submits(aclient: AsyncClient) -> None:
    first = await aclient.submit(
        "demo.sleep", {"seconds": 0}, idempotency_key="k1", not_before=LATER
    )
    again = await aclient.submit(
        "demo.sleep", {"seconds": 0}, idempotency_key="k1", not_before=LATER
    )
    assert again.id == first.id
    with pytest.raises(IdempotencyMismatch):
        await aclient.submit("demo.sleep", {"seconds": 1}, idempotency_key="k1", not_before=LATER)


async def test_hold_release_cancel_delete(aclient: AsyncClient) -> None:
    op = await aclient.submit("demo.sleep", {"seconds": 0}, not_before=LATER)
    assert (await aclient.hold(op.id, reason="maintenance")).status is Status.ON_HOLD
    assert (await aclient.release(op.id)).status is Status.ACCEPTED
    assert (await aclient.cancel(op.id)).status is Status.CANCELED
    with pytest.raises(IllegalTransition):
        await aclient.cancel(op.id)
    await aclient.delete(op.id)
    with pytest.raises(Gone):
        await aclient.get(op.id)


async def test_list_follows_every_page(aclient: AsyncClient) -> None:
    ids = [
        (
            await aclient.submit(
                "demo.sleep", {"seconds": 0}, not_before=LATER, compartment_id="c1"
            )
        ).id
        for _ in range(5)
    ]
    await aclient.submit("demo.sleep", {"seconds": 0}, not_before=LATER, compartment_id="c2")
    listed = [op.id async for op in aclient.list(compartment_id="c1", page_size=2)]
    assert listed == list(reversed(ids))  # newest first, each once
    first = await aclient.list_page(compartment_id="c1", limit=2, order="asc")
    assert [op.id for op in first.items] == ids[:2] and first.next_page is not None
    held = [op async for op in aclient.list(status=[Status.ACCEPTED], operation_type="demo.sleep")]
    assert len(held) == 6


async def test_watch_yields_each_state_until_terminal(aclient: AsyncClient) -> None:
    op = await aclient.submit("demo.sleep", {"seconds": 1.0, "steps": 5})
    states = [s async for s in aclient.watch(op.id, interval=0.05, timeout=20)]
    assert states[-1].status is Status.SUCCEEDED
    assert Status.IN_PROGRESS in {s.status for s in states}
    percents = [s.percent_complete for s in states]
    assert percents == sorted(percents) and len(set(percents)) > 2


async def test_wait_is_bounded_and_sees_a_cancel(aclient: AsyncClient) -> None:
    op = await aclient.submit("demo.sleep", {"seconds": 60, "steps": 600})
    started = asyncio.get_running_loop().time()
    with pytest.raises(WaitTimeout):
        await aclient.wait(op.id, timeout=0.5)
    assert asyncio.get_running_loop().time() - started < 5
    await aclient.cancel(op.id)
    assert (await aclient.wait(op.id, timeout=20)).status is Status.CANCELED


async def test_operation_types_publish_their_schemas(aclient: AsyncClient) -> None:
    types = {t.name: t for t in await aclient.operation_types()}
    assert {"demo.hash", "demo.sleep"} <= set(types)
    assert "path" in types["demo.hash"].input_schema["properties"]


# ------------------------------------------------------------------------- the sync client, real server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `longrun serve` (with its worker) on a free port; yields its URL."""
    home = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {**os.environ, "LONGRUN_POLL_INTERVAL": "0.05", "LONGRUN_FLUSH_INTERVAL": "0.05"}
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "serve", "--db", f"sqlite:///{home}/s.db",
         "--port", str(port)],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {(home / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("serve did not answer /healthz within 30s")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_sync_client_round_trip(server: str, tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"hello longrun\n")
    with Client(server, poll_interval=0.05) as client:
        op = client.submit("demo.hash", {"path": str(target)}, idempotency_key=f"k-{tmp_path.name}")
        done = client.wait(op.id, timeout=20)
        assert done.status is Status.SUCCEEDED
        assert done.result["digest"] == hashlib.sha256(b"hello longrun\n").hexdigest()
        assert client.get(op.id) == done
        assert op.id in {o.id for o in client.list(operation_type="demo.hash")}
        assert [r.identifier for r in client.resources(op.id)] == [str(target.resolve())]
        assert len(list(client.logs(op.id, page_size=1))) >= 2
        assert {"demo.hash", "demo.sleep"} <= {t.name for t in client.operation_types()}


def test_sync_client_watch_and_errors(server: str) -> None:
    with Client(server, poll_interval=0.05) as client:
        op = client.submit("demo.sleep", {"seconds": 0.5, "steps": 5})
        states = list(client.watch(op.id, interval=0.05, timeout=20))
        assert states[-1].status is Status.SUCCEEDED
        slow = client.submit("demo.sleep", {"seconds": 30})
        with pytest.raises(WaitTimeout):
            client.wait(slow.id, timeout=0.3)
        client.cancel(slow.id)
        assert client.wait(slow.id, timeout=20).status is Status.CANCELED
        with pytest.raises(NotFound):
            client.get("01a0a0a0-0000-7000-8000-000000000000")
        with pytest.raises(InvalidInput):
            client.submit("demo.hash", {"path": ""})


def test_an_unreachable_server_raises_unreachable() -> None:
    with (
        Client(f"http://127.0.0.1:{_free_port()}", timeout=2) as client,
        pytest.raises(Unreachable),
    ):
        client.get("x")
