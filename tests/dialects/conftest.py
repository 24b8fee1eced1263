"""One real ``longrun serve`` (embedded worker, temp SQLite) per test module, and waiting helpers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.support import COMMAND, STARTUP_TIMEOUT, until
from tests.support import free_port as _free_port

T = TypeVar("T")


@dataclass
class Server:
    """A running ``longrun serve`` and where it answers."""

    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``longrun serve`` on a free loopback port with a temp SQLite file; stopped at the end."""
    home = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {
        **os.environ,
        "LONGRUN_POLL_INTERVAL": "0.05",
        "LONGRUN_FLUSH_INTERVAL": "0.05",
        "LONGRUN_REAPER_INTERVAL": "0.2",
        "LONGRUN_LEASE_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    log = home / "serve.log"
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [*COMMAND, "serve", "--db", f"sqlite:///{home}/longrun.db", "--port", str(port)],
            cwd=home,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    running = Server(f"http://127.0.0.1:{port}", popen, log)

    def healthy() -> bool:
        if popen.poll() is not None:
            pytest.fail(f"serve exited:\n{running.output()}")
        try:
            return httpx.get(f"{running.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        until(healthy, STARTUP_TIMEOUT, "serve answering /healthz")
        yield running
    finally:
        popen.terminate()
        try:
            popen.wait(15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)
