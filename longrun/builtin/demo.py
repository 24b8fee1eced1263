"""Demo operation types: ``demo.hash`` (hash a file, with byte progress) and ``demo.sleep``."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from pydantic import BaseModel, Field

from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = ["HashInput", "SleepInput", "app", "hash_file", "sleep"]

app = App()

_MAX_CHUNK = 64 << 20


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class HashInput(BaseModel):
    """What ``demo.hash`` reads."""

    path: str = Field(min_length=1, description="the file to hash, as the worker sees it")
    algorithm: Literal["sha256", "blake2b"] = "sha256"
    chunk_size: int = Field(1 << 20, ge=512, le=_MAX_CHUNK, description="bytes read at a time")
    throttle_bytes_per_second: int | None = Field(
        None, ge=1, description="read no faster than this, to make a visible demo"
    )


class SleepInput(BaseModel):
    """What ``demo.sleep`` waits for."""

    seconds: float = Field(1.0, ge=0, le=3600)
    steps: int = Field(10, ge=1, le=10_000)


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise OperationError("FileNotFound", f"no such file: {path}", target="input.path") from None
    except IsADirectoryError:
        raise OperationError("NotAFile", f"not a file: {path}", target="input.path") from None
    except PermissionError:
        raise OperationError(
            "PermissionDenied", f"cannot read {path}", target="input.path"
        ) from None
    size = os.fstat(handle.fileno()).st_size
    return handle, size


def _read_into(handle: BinaryIO, hasher: _Hasher, size: int) -> int:
    chunk = handle.read(size)
    hasher.update(chunk)
    return len(chunk)


@app.operation("demo.hash", input=HashInput, max_attempts=2)
async def hash_file(ctx: Any, input: HashInput) -> dict[str, Any]:  # noqa: A002 - handler shape
    """Hash a file in chunks, reporting bytes as it goes."""
    path = Path(input.path).expanduser().resolve()
    handle, size = await asyncio.to_thread(_open, path)
    ctx.add_resource("file", "RELATED", str(path), entity_uri=path.as_uri())
    ctx.log(f"hashing {path} ({size} bytes) with {input.algorithm}")
    hasher: _Hasher = hashlib.new(input.algorithm)
    done = 0
    started = time.monotonic()
    ctx.progress(bytes_done=0, bytes_total=size)
    try:
        while True:
            ctx.check_cancelled()
            read = await asyncio.to_thread(_read_into, handle, hasher, input.chunk_size)
            if not read:
                break
            done += read
            ctx.progress(bytes_done=done, bytes_total=max(size, done))
            if input.throttle_bytes_per_second:
                ahead = done / input.throttle_bytes_per_second - (time.monotonic() - started)
                if ahead > 0:
                    await ctx.sleep(ahead)
    finally:
        handle.close()
    digest = hasher.hexdigest()
    ctx.progress(100.0, bytes_done=done, bytes_total=done)
    ctx.set_resource_location(str(path))
    ctx.log(f"{input.algorithm} {digest} ({done} bytes)")
    return {"digest": digest, "algorithm": input.algorithm, "size": done}


@app.operation("demo.sleep", input=SleepInput)
async def sleep(ctx: Any, input: SleepInput) -> dict[str, Any]:  # noqa: A002 - handler shape
    """Sleep in steps, reporting each one: a handler for tests and demos."""
    ctx.log(f"sleeping {input.seconds:g}s in {input.steps} steps (attempt {ctx.attempt})")
    ctx.progress(items_done=0, items_total=input.steps)
    step = input.seconds / input.steps
    for done in range(1, input.steps + 1):
        await ctx.sleep(step)
        ctx.progress(items_done=done, items_total=input.steps)
    ctx.log("awake")
    return {"slept": input.seconds, "steps": input.steps, "attempt": ctx.attempt}
