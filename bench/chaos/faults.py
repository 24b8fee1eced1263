"""The fault injector: at random, kill, stop, restart and skew the processes of a chaos cluster."""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.chaos.procs import Cluster, Node

__all__ = ["KINDS", "Injector"]

KINDS = [
    "worker_sigkill",
    "worker_sigstop",
    "server_sigkill",
    "clock_skew",
    "slow_store",
    "postgres_restart",
]
LEASE = 2.0
FIRST_TRIES = 8  # attempts at a kind not yet injected before it is left to chance


def pg_ctl(*args: str) -> None:
    """Run pg_ctl on the throwaway server of scripts/with-postgres."""
    runner = shlex.split(os.environ.get("LONGRUN_TEST_PGAS", ""))
    pg_ctl = str(Path(os.environ["LONGRUN_TEST_PGBIN"]) / "pg_ctl")
    data, log = os.environ["LONGRUN_TEST_PGDATA"], os.environ["LONGRUN_TEST_PGTMP"] + "/server.log"
    cmd = [*runner, pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=90)


class Injector:
    """Picks a fault every ``pace`` seconds (each kind once first, then at random) until stopped."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        kinds: list[str],
        pace: tuple[float, float],
        seed: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.kinds = kinds
        self.pace = pace
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-faults", daemon=True)
        self._pending: list[threading.Thread] = []
        self._actions: dict[str, Callable[[], bool]] = {
            "worker_sigkill": self.worker_sigkill,
            "worker_sigstop": self.worker_sigstop,
            "server_sigkill": self.server_sigkill,
            "clock_skew": self.clock_skew,
            "slow_store": self.slow_store,
            "postgres_restart": self.postgres_restart,
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """No new faults; wait for the ones in flight (a stop's SIGCONT, a temporary worker)."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        for thread in self._pending:
            thread.join(max(0.1, deadline - time.monotonic()))
        for node in self.cluster.extras:
            node.stop()
        self.cluster.resume_all()
        self.cluster.supervise()

    def _loop(self) -> None:
        order = list(self.kinds)
        self.random.shuffle(order)
        attempts: Counter[str] = Counter()
        while not self._stop.wait(self.random.uniform(*self.pace)):
            kind = self._next_kind(order, attempts)
            attempts[kind] += 1
            try:
                if self._actions[kind]():
                    self.counts[kind] += 1
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                self.errors.append(f"{kind}: {exc!r}")
            self.cluster.supervise()

    def _next_kind(self, order: list[str], attempts: Counter[str]) -> str:
        """A kind not injected yet comes first, and stays first while it cannot be injected (no
        second live worker to stop, say) for up to ``FIRST_TRIES`` attempts; then at random."""
        pending = [k for k in order if not self.counts[k] and attempts[k] < FIRST_TRIES]
        return pending[0] if pending else self.random.choice(self.kinds)

    def _later(self, delay: float, action: Callable[[], object]) -> None:
        def run() -> None:
            self._stop.wait(delay)  # stopping cuts the fault short: the cluster must settle
            action()

        thread = threading.Thread(target=run, daemon=True)
        self._pending.append(thread)
        thread.start()

    def _live_worker(self) -> Node | None:
        nodes = [n for n in self.cluster.workers if n.alive and not n.stopped]
        return self.random.choice(nodes) if len(nodes) > 1 else None  # keep one working

    # faults -------------------------------------------------------------------------------------
    def worker_sigkill(self) -> bool:
        node = self._live_worker()
        if node is None:
            return False
        node.kill()  # the supervisor starts a new process in its place
        return True

    def worker_sigstop(self) -> bool:
        node = self._live_worker()
        if node is None or not node.signal(signal.SIGSTOP):
            return False
        self._later(
            self.random.uniform(1.5 * LEASE, 2.5 * LEASE), lambda: node.signal(signal.SIGCONT)
        )
        return True

    def server_sigkill(self) -> bool:
        node = self.random.choice(self.cluster.servers)
        if not node.alive:
            return False
        node.kill()
        return True

    def clock_skew(self) -> bool:
        """A worker whose clock jumped: ahead (it reaps live leases early) or behind."""
        skew = self.random.choice([-1, 1]) * self.random.uniform(1.5 * LEASE, 3 * LEASE)
        return self._temporary("skewed", {"LONGRUN_CLOCK_SKEW_SECONDS": f"{skew:.2f}"})

    def slow_store(self) -> bool:
        delay = self.random.choice([50, 150, 400])
        return self._temporary("slow", {"LONGRUN_STORE_DELAY_MS": str(delay)})

    def _temporary(self, label: str, env: dict[str, str]) -> bool:
        name = f"{label}-{sum(1 for n in self.cluster.extras if n.name.startswith(label))}"
        node = self.cluster.extra_worker(name, env)
        if not node.alive:
            self.errors.append(f"{name} did not start:\n{node.log_tail(1500)}")
            return False
        self._later(self.random.uniform(2 * LEASE, 4 * LEASE), node.stop)
        return True

    def postgres_restart(self) -> bool:
        if not self.cluster.env["LONGRUN_DB"].startswith("postgres"):
            return False
        pg_ctl("restart", "-m", "fast")
        return True
