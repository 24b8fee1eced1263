"""The chaos operation types (``bench.chaos.ops:app``); every handler run is recorded to a file."""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
import uuid
from typing import Any

from longrun.engine.registry import App
from longrun.model import RetryableError

__all__ = ["RECORD_DIR_ENV", "TYPES", "app", "steady_app"]

RECORD_DIR_ENV = "CHAOS_RECORD_DIR"
TYPES = ["chaos.ok", "chaos.slow", "chaos.fail", "chaos.retry", "chaos.hang", "chaos.exit"]

app = App()
_lock = threading.Lock()


def _record(**fields: Any) -> None:
    """Append one JSON line to this process's run file (written through: survives SIGKILL)."""
    folder = os.environ.get(RECORD_DIR_ENV)
    if not folder:
        return
    line = (json.dumps({**fields, "pid": os.getpid()}) + "\n").encode()
    with _lock:
        fd = os.open(f"{folder}/runs-{os.getpid()}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _first_exit(op_id: str) -> bool:
    """True once per operation (a marker file in the record folder, which every process shares)."""
    folder = os.environ.get(RECORD_DIR_ENV)
    if not folder:
        return False
    try:
        os.close(os.open(f"{folder}/exited-{op_id}", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


class _Run:
    """One handler run: its id, and visible writes stamped with it (a log line per step)."""

    def __init__(self, ctx: Any, kind: str) -> None:
        self.ctx = ctx
        self.id = uuid.uuid4().hex[:12]
        self.seq = 0
        worker = getattr(ctx.operation, "worker_id", None)
        _record(
            ev="start",
            run=self.id,
            op=ctx.operation_id,
            attempt=ctx.attempt,
            worker=worker,
            kind=kind,
            t=time.time(),
        )

    def step(self, percent: float) -> None:
        """Record the wall time first, then write: a recorded time is never after the write."""
        self.seq += 1
        _record(ev="step", run=self.id, op=self.ctx.operation_id, seq=self.seq, t=time.time())
        self.ctx.log(f"run={self.id} seq={self.seq}")
        self.ctx.progress(percent, items_done=self.seq)

    def end(self, how: str) -> None:
        _record(ev="end", run=self.id, op=self.ctx.operation_id, how=how, t=time.time())

    def result(self) -> dict[str, Any]:
        return {"run": self.id, "attempt": self.ctx.attempt}


async def _steps(run: _Run, steps: int, low: float, high: float) -> None:
    for i in range(1, steps + 1):
        await run.ctx.sleep(random.uniform(low, high))
        run.step(100 * i / (steps + 1))


async def _body(ctx: Any, kind: str, steps: int, low: float, high: float) -> dict[str, Any]:
    run = _Run(ctx, kind)
    try:
        await _steps(run, steps, low, high)
        if kind == "fail":
            raise ValueError("chaos: this operation type always fails")
        if kind == "retry" and ctx.attempt < 2:
            raise RetryableError("chaos: try again")
    except BaseException as exc:
        run.end(type(exc).__name__)
        raise
    run.end("ok")
    return run.result()


@app.operation("chaos.ok", max_attempts=3)
async def ok(ctx: Any, data: Any) -> dict[str, Any]:
    """A few short steps with progress, then success."""
    return await _body(ctx, "ok", random.randint(2, 6), 0.02, 0.2)


@app.operation("chaos.slow", max_attempts=3)
async def slow(ctx: Any, data: Any) -> dict[str, Any]:
    """Many steps over a few seconds: what cancels, kills and stops land on."""
    return await _body(ctx, "slow", random.randint(8, 20), 0.1, 0.4)


@app.operation("chaos.fail", max_attempts=2)
async def fail(ctx: Any, data: Any) -> dict[str, Any]:
    """A step or two, then an exception: FAILED with an error."""
    return await _body(ctx, "fail", random.randint(1, 3), 0.02, 0.1)


@app.operation("chaos.retry", max_attempts=3, retry_backoff=0.2)
async def retry(ctx: Any, data: Any) -> dict[str, Any]:
    """RetryableError on the first attempt, success on the next."""
    return await _body(ctx, "retry", random.randint(1, 3), 0.02, 0.1)


@app.operation("chaos.hang", max_attempts=2, timeout=1.5, cancel_grace=0.5)
def hang(ctx: Any, data: Any) -> dict[str, Any]:
    """A thread that ignores cancel and timeout, keeps writing, and ends on its own much later."""
    run = _Run(ctx, "hang")
    for i in range(1, 13):
        time.sleep(0.25)
        run.step(min(99.0, 8.0 * i))
    run.end("ok")
    return run.result()


@app.operation("chaos.exit", max_attempts=3)
async def exit_(ctx: Any, data: Any) -> dict[str, Any]:
    """The first run that gets this far exits its worker process mid-run (os._exit): the first
    attempt, or a later one when another fault ended the first before it got here; the attempt
    after the exit succeeds."""
    run = _Run(ctx, "exit")
    await _steps(run, 2, 0.05, 0.2)
    if _first_exit(ctx.operation_id):
        _record(ev="exit", run=run.id, op=ctx.operation_id, t=time.time())
        await asyncio.sleep(random.uniform(0, 0.2))
        os._exit(3)
    run.end("ok")
    return run.result()


def steady_app() -> App:
    """Every chaos type but ``chaos.exit``: for the soak's witness worker, which no fault ends."""
    steady = App()
    for op_type in app:
        if op_type.name != "chaos.exit":
            steady.register(op_type)
    return steady
