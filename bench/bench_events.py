"""Event-stream delivery: 1,000 SSE subscribers on one server while 500 operations report progress.

Run: .venv/bin/python bench/bench_events.py [--ops 500] [--subscribers 1000] [--seconds 10].
Prints figures; asserts nothing. The server is a real `longrun serve` (embedded worker, SQLite)
running this module's ``bench.progress`` type, which stamps each ``ctx.progress()`` call with the
wall-clock time; each subscriber is a raw HTTP/1.1 connection to one operation's event stream,
from its own loopback address (the server bounds streams per client address). Latency is taken
from the ``ctx.progress()`` call (so it includes the worker's flush interval) and from the time
the worker stamped its write (``lastActionTime``; so it includes the writer's queue and group
commit) to the moment the subscriber reads the event. ``--separate-worker`` runs the handlers in
a `longrun worker` process, so the server's CPU is the API's and the streams' alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from longrun.engine.registry import App

__all__ = ["app"]

app = App()
_SENT = re.compile(rb'"sentAt":([0-9.]+)')
_ACTION = re.compile(rb'"lastActionTime":"([^"]+)"')
_STATUS = re.compile(rb'"status":"([A-Z_]+)"')
_PER_ADDRESS = 25  # below the server's bound of streams per client


class ProgressInput(BaseModel):
    """What ``bench.progress`` does: ``steps`` progress calls, ``interval`` seconds apart."""

    steps: int = 100
    interval: float = 0.1


@app.operation("bench.progress", input=ProgressInput)
async def progress(ctx: Any, input: ProgressInput) -> None:  # noqa: A002
    """Report progress with the wall-clock time of each call."""
    for step in range(1, input.steps + 1):
        await asyncio.sleep(input.interval)
        ctx.progress(items_done=step, items_total=input.steps, sent_at=time.time())


class Subscriber:
    """One raw connection to one operation's event stream; records delivery latencies."""

    def __init__(self, host: str, port: int, op_id: str, source: str) -> None:
        self.host, self.port, self.op_id, self.source = host, port, op_id, source
        self.from_call: list[float] = []
        self.received: list[float] = []  # when each from_call sample arrived
        self.from_commit: list[float] = []
        self.events = 0
        self.ended = False
        self.ended_at = float("inf")

    async def run(self, ready: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, local_addr=(self.source, 0)
        )
        path = f"/v1/operations/{self.op_id}/events"
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        ready.set()
        last_sent = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if not line.startswith(b"data: "):
                    continue
                now = time.time()
                self.events += 1
                sent = _SENT.search(line)
                if sent and sent.group(1) != last_sent:
                    last_sent = sent.group(1)
                    self.from_call.append(now - float(last_sent))
                    self.received.append(now)
                    action = _ACTION.search(line)
                    if action:
                        committed = datetime.fromisoformat(action.group(1).decode()).timestamp()
                        self.from_commit.append(now - committed)
                status = _STATUS.search(line)
                if status and status.group(1) in (b"SUCCEEDED", b"FAILED", b"CANCELED"):
                    self.ended = True
                    self.ended_at = now
                    break
        finally:
            writer.close()


def _start_worker(db: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    bench_dir = str(Path(__file__).resolve().parent)
    full_env = {
        **os.environ,
        **env,
        "LONGRUN_DB": db,
        "PYTHONPATH": f"{bench_dir}:{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [
        sys.executable,
        "-m",
        "longrun.cli",
        "worker",
        "--slots",
        env["LONGRUN_WORKER_SLOTS"],
        "--app",
        "bench_events:app",
    ]
    return subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and resident bytes of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


async def bench(
    ops: int, subscribers: int, seconds: float, separate_worker: bool, flush: float
) -> None:
    import httpx
    from _common import percentile, print_table, start_server

    steps = max(1, int(seconds / 0.1))
    folder = Path(tempfile.mkdtemp(prefix="longrun-bench-events-"))
    env = {
        "LONGRUN_WORKER_SLOTS": str(min(1024, ops)),
        "LONGRUN_FLUSH_INTERVAL": str(flush),
        "LONGRUN_POLL_INTERVAL": "0.1",
    }
    db = f"sqlite:///{folder}/events.db"
    serve_args = ["--app", "bench_events:app"] + (["--no-worker"] if separate_worker else [])
    proc, url = start_server(db, extra_env=env, args=serve_args)
    worker = _start_worker(db, env) if separate_worker else None
    port = int(url.rsplit(":", 1)[1])
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            start_at = datetime.fromtimestamp(time.time() + 10 + subscribers / 200).astimezone()
            body = {
                "operationType": "bench.progress",
                "input": {"steps": steps, "interval": 0.1},
                "notBefore": start_at.isoformat(),
            }
            ids = [(await http.post("/v1/operations", json=body)).json()["id"] for _ in range(ops)]
        subs = [
            Subscriber(
                "127.0.0.1",
                port,
                ids[i % ops],
                f"127.0.{1 + (i // _PER_ADDRESS) // 250}.{1 + (i // _PER_ADDRESS) % 250}",
            )
            for i in range(subscribers)
        ]
        readies = [asyncio.Event() for _ in subs]
        tasks = [asyncio.create_task(s.run(r)) for s, r in zip(subs, readies, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        await asyncio.sleep(max(0.0, start_at.timestamp() - time.time()))  # measure the run only
        cpu0, _ = _proc_usage(proc.pid)
        worker_cpu0 = _proc_usage(worker.pid)[0] if worker else 0.0
        wall0, client0 = time.monotonic(), time.process_time()
        peak = 0
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.5)
            peak = max(peak, _proc_usage(proc.pid)[1])
            if time.monotonic() - wall0 > seconds + 120:
                break
        cpu1, rss = _proc_usage(proc.pid)
        worker_cpu = _proc_usage(worker.pid)[0] - worker_cpu0 if worker else None
        wall = time.monotonic() - wall0
        client_cpu = time.process_time() - client0
        for t in tasks:
            t.cancel()
        calls = [x for s in subs for x in s.from_call]
        first_end = min(s.ended_at for s in subs)
        steady = [
            x for s in subs for x, t in zip(s.from_call, s.received, strict=True) if t < first_end
        ]
        commits = [x for s in subs for x in s.from_commit]
        ms = lambda v: f"{v * 1000:.0f} ms"  # noqa: E731
        print_table(
            f"SSE delivery: {subscribers} subscribers, {ops} operations, {steps} progress calls each",
            [
                ("events delivered", f"{sum(s.events for s in subs)}"),
                (
                    "streams ended at the terminal state",
                    f"{sum(s.ended for s in subs)}/{subscribers}",
                ),
                ("progress() → subscriber p50", ms(percentile(calls, 50))),
                ("progress() → subscriber p99", ms(percentile(calls, 99))),
                ("  p99 before the first operation ends", ms(percentile(steady, 99))),
                ("write stamped (lastActionTime) → subscriber p50", ms(percentile(commits, 50))),
                ("write stamped (lastActionTime) → subscriber p99", ms(percentile(commits, 99))),
                ("server CPU (of one core) while streaming", f"{100 * (cpu1 - cpu0) / wall:.0f}%"),
                ("server RSS peak", f"{max(peak, rss) / 2**20:.0f} MiB"),
                ("this client's CPU (of one core)", f"{100 * client_cpu / wall:.0f}%"),
                ("load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"),
                (
                    "worker",
                    "embedded in the server"
                    if worker_cpu is None
                    else f"a separate process, CPU {100 * worker_cpu / wall:.0f}% of one core",
                ),
                ("worker flush interval", f"{flush} s"),
            ],
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--separate-worker", action="store_true", help="run the handlers in a `longrun worker`"
    )
    parser.add_argument("--flush-interval", type=float, default=0.2, help="the worker's")
    args = parser.parse_args()
    asyncio.run(
        bench(args.ops, args.subscribers, args.seconds, args.separate_worker, args.flush_interval)
    )


if __name__ == "__main__":
    main()
