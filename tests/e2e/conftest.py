"""Browser tests: Debian's chromium driven by Playwright against a real `longrun serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port as _free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT = 30.0
_ENTRY = Path(sys.executable).with_name("longrun")
COMMAND = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "longrun.cli"]

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: run scripts/install-browser to run the browser tests",
        allow_module_level=True,
    )


@dataclass
class Server:
    """A `longrun serve` process (API, dashboard and embedded worker) on a temp SQLite file."""

    url: str
    popen: subprocess.Popen[bytes]
    log: Path
    http: httpx.Client

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def submit(self, operation_type: str, input: dict[str, Any], **body: Any) -> dict[str, Any]:  # noqa: A002
        response = self.http.post(
            "/v1/operations", json={"operationType": operation_type, "input": input, **body}
        )
        assert response.status_code == 202, response.text
        data: dict[str, Any] = response.json()
        return data

    def get(self, op_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get(f"/v1/operations/{op_id}").json()
        return data

    def stop(self, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                pytest.fail(f"serve did not stop within {timeout}s on SIGTERM:\n{self.output()}")
        return self.popen.returncode


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "LONGRUN_DB": f"sqlite:///{tmp_path}/e2e.db",
        "LONGRUN_POLL_INTERVAL": "0.1",
        "LONGRUN_FLUSH_INTERVAL": "0.1",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [*COMMAND, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    srv = Server(url, popen, log, httpx.Client(base_url=url, timeout=10))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if popen.poll() is not None:
                pytest.fail(f"serve exited:\n{srv.output()}")
            try:
                if srv.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer within {STARTUP_TIMEOUT}s:\n{srv.output()}")
            time.sleep(0.05)
        yield srv
    finally:
        srv.stop()
        srv.http.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # module scope: Playwright's sync API keeps an event loop running in this thread, which
    # the asyncio tests collected after this directory must not find
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield pg
    finally:
        context.close()
    # a stream cut by the server's stop is the only error a page may log
    errors = [e for e in errors if "ERR_INCOMPLETE_CHUNKED_ENCODING" not in e]
    assert not errors, f"script or CSP errors on the page: {errors}"
