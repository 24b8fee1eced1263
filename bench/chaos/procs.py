"""Real longrun processes for the chaos run: API servers and workers, started, killed, restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["COMMAND", "Cluster", "Node", "free_port", "wait_until"]

_ENTRY = Path(sys.executable).with_name("longrun")
COMMAND = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "longrun.cli"]
APP = "bench.chaos.ops:app"
STEADY_APP = "bench.chaos.ops:steady_app"
STARTUP = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, timeout: float, step: float = 0.05) -> bool:
    """Poll ``check()`` until truthy; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(step)
    return bool(check())  # type: ignore[operator]


@dataclass
class Node:
    """One role slot (a server on a port, or a worker) and the process that fills it now."""

    name: str
    args: list[str]
    env: dict[str, str]
    home: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    stopped: bool = False  # SIGSTOPped right now
    starts: int = 0

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        self.starts += 1
        log = (self.home / f"{self.name}.log").open("ab")
        log.write(f"\n===== start {self.starts} at {time.time():.3f}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            [*COMMAND, *self.args],
            cwd=self.home,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pids.append(self.popen.pid)
        self.stopped = False

    def ready(self, timeout: float = STARTUP) -> bool:
        """Wait until a server answers /healthz, or a worker logged that it started."""

        def check() -> bool:
            if not self.alive:
                return True
            if self.port is not None:
                try:
                    return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success
                except httpx.HTTPError:
                    return False
            return "worker started" in self.log_tail(4000)

        return wait_until(check, timeout, 0.1) and self.alive

    def log_tail(self, size: int = 4000) -> str:
        path = self.home / f"{self.name}.log"
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode(errors="replace")

    def signal(self, sig: signal.Signals) -> bool:
        if not self.alive:
            return False
        assert self.popen is not None
        self.popen.send_signal(sig)
        if sig is signal.SIGSTOP:
            self.stopped = True
        elif sig in (signal.SIGCONT, signal.SIGKILL):
            self.stopped = False
        return True

    def kill(self) -> None:
        if self.signal(signal.SIGKILL):
            assert self.popen is not None
            self.popen.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGCONT, SIGTERM, wait; SIGKILL if it will not go (a hung handler thread can hold it)."""
        if not self.alive:
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGCONT)
        self.popen.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


class Cluster:
    """N ``serve --no-worker`` and M ``worker`` processes on one store, and their supervisor."""

    def __init__(
        self,
        home: Path,
        db: str,
        *,
        servers: int,
        workers: int,
        extra_env: dict[str, str] | None = None,
        witnesses: bool = False,
    ) -> None:
        self.home = home
        self.env = {
            **os.environ,
            "LONGRUN_DB": db,
            "LONGRUN_LEASE_SECONDS": "2",
            "LONGRUN_REAPER_INTERVAL": "0.2",
            "LONGRUN_POLL_INTERVAL": "0.2",
            "LONGRUN_FLUSH_INTERVAL": "0.1",
            "LONGRUN_RETENTION_SECONDS": "86400",
            "CHAOS_RECORD_DIR": str(home / "runs"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
            ),
            **(extra_env or {}),
        }
        self.env.pop("LONGRUN_URL", None)
        (home / "runs").mkdir(parents=True, exist_ok=True)
        self.servers = [self._server(i) for i in range(servers)]
        self.workers = [self._worker(f"worker-{i}") for i in range(workers)]
        # a soak's server and worker that no fault touches (the worker runs no chaos.exit): each
        # one process for the whole run, so its memory and fds can be followed over time
        self.witnesses: list[Node] = []
        if witnesses:
            steady = self._worker("steady-worker")
            steady.args[-1] = STEADY_APP
            self.witnesses = [self._server("steady-server"), steady]
        self.extras: list[Node] = []  # short-lived workers with a skewed clock or a slow store
        self.restarts = 0  # dead processes the supervisor brought back
        self._lock = threading.Lock()

    def _server(self, i: int | str) -> Node:
        port = free_port()
        args = ["serve", "--no-worker", "--port", str(port), "--app", APP]
        name = i if isinstance(i, str) else f"server-{i}"
        return Node(name, args, self.env, self.home, port=port)

    def _worker(self, name: str, env: dict[str, str] | None = None) -> Node:
        args = ["worker", "--slots", "4", "--app", APP]
        return Node(name, args, {**self.env, **(env or {})}, self.home)

    @property
    def urls(self) -> list[str]:
        servers = [*self.servers, *(n for n in self.witnesses if n.port is not None)]
        return [f"http://127.0.0.1:{node.port}" for node in servers]

    @property
    def nodes(self) -> list[Node]:
        return [*self.servers, *self.workers, *self.witnesses, *self.extras]

    @property
    def lasting(self) -> list[Node]:
        """The role slots that live for the whole run (the supervisor restarts them)."""
        return [*self.servers, *self.workers, *self.witnesses]

    def start(self) -> None:
        for node in self.lasting:
            node.start()
        for node in self.lasting:
            if not node.ready():
                raise RuntimeError(f"{node.name} did not start:\n{node.log_tail()}")

    def supervise(self) -> int:
        """Restart every dead server or worker (SIGKILLed, or its handler exited); how many."""
        with self._lock:
            dead = [n for n in self.lasting if not n.alive]
            for node in dead:
                node.start()
            self.restarts += len(dead)
        for node in dead:
            node.ready()
        return len(dead)

    def extra_worker(self, name: str, env: dict[str, str]) -> Node:
        node = self._worker(name, env)
        with self._lock:
            self.extras.append(node)
        node.start()
        node.ready()
        return node

    def resume_all(self) -> None:
        for node in self.nodes:
            if node.stopped:
                node.signal(signal.SIGCONT)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
