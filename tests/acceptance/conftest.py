"""Real processes: `longrun serve --no-worker` and `longrun worker`s on a temp SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from longrun.client import Client
from tests.support import COMMAND, STARTUP_TIMEOUT, free_port, until

T = TypeVar("T")


@dataclass
class Proc:
    """One started process and the file its output goes to."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGCONT (in case it is stopped), SIGTERM, wait; SIGKILL if it will not go."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


@dataclass
class Cluster:
    """A server and its workers on one store, with a client and a CLI runner."""

    home: Path
    port: int
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> Proc:
        log = self.home / f"{name}.log"
        serial = 1
        while log.exists():  # several clusters may share a home: never mix two logs
            serial += 1
            log = self.home / f"{name}-{serial}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            [*COMMAND, *args], cwd=self.home, env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )
        handle.close()  # the child keeps its own descriptor
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def serve(self) -> Proc:
        """Start `serve --no-worker`; a port taken meanwhile by someone else gets a new port."""
        for _ in range(3):
            proc = self.start("serve", "serve", "--no-worker", "--port", str(self.port))
            if self._healthy(proc):
                return proc
            self.procs.remove(proc)
            if "address already in use" not in proc.output():
                break
            self.port = free_port()
        pytest.fail(f"serve did not start:\n{proc.output()}")

    def _healthy(self, proc: Proc) -> bool:
        def answered() -> str | None:
            if proc.popen.poll() is not None:
                return "exited"
            try:
                ok = httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return None
            return "healthy" if ok else None

        return until(answered, STARTUP_TIMEOUT, "serve answering /healthz") == "healthy"

    def worker(self, name: str) -> Proc:
        proc = self.start(name, "worker", "--slots", "4")
        until(
            lambda: proc.popen.poll() is not None or "worker started" in proc.output(),
            STARTUP_TIMEOUT,
            f"{name} starting",
        )
        if proc.popen.poll() is not None:
            pytest.fail(f"{name} exited:\n{proc.output()}")
        return proc

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run one CLI verb against this server."""
        return subprocess.run(
            [*COMMAND, "--url", self.url, *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def client(self) -> Client:
        return Client(self.url, poll_interval=0.05)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """`longrun serve --no-worker` plus one `longrun worker` ("worker-a"), short leases."""
    env = {
        **os.environ,
        "LONGRUN_DB": f"sqlite:///{tmp_path}/longrun.db",
        "LONGRUN_LEASE_SECONDS": "2",
        "LONGRUN_REAPER_INTERVAL": "0.2",
        "LONGRUN_POLL_INTERVAL": "0.1",
        "LONGRUN_FLUSH_INTERVAL": "0.1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("LONGRUN_URL", None)
    running = Cluster(tmp_path, free_port(), env)
    try:
        running.serve()
        running.worker("worker-a")
        yield running
    finally:
        for proc in reversed(running.procs):
            proc.stop()
        for proc in running.procs:  # pytest shows this only when the test failed
            print(f"----- {proc.name} (exit {proc.popen.returncode})\n{proc.output()[-4000:]}")
