"""Built-in operations on generated data in temp dirs: trees, databases, and an App over them."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import longrun.testing as testing
from longrun.builtin import default_app, take_pool
from longrun.builtin.pack_file import read_footer
from longrun.engine.caps import EntryCaps
from longrun.engine.registry import App
from longrun.engine.worker import Worker
from longrun.model import Operation
from longrun.service import Service
from longrun.store import open_store
from longrun.testing import RecordingContext


def make_tree(root: Path, files: int = 40, size: int = 20_000, seed: int = 1) -> Path:
    """A directory of ``files`` random files in nested folders, with a few distinct modes."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(files):
        folder = root / f"d{n % 4}" / f"e{n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"f{n}.bin"
        path.write_bytes(rng.randbytes(rng.randint(0, size)))
        os.chmod(path, 0o600 if n % 5 == 0 else 0o644)
    (root / "dup-a").write_bytes(b"same content" * 100)
    (root / "dup-b").write_bytes(b"same content" * 100)
    (root / "empty").mkdir()
    os.chmod(root / "d1", 0o750)
    return root


def tree_of(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``root``: content (None for folders) and mode."""
    found: dict[str, tuple[bytes | None, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        mode = path.stat().st_mode & 0o7777
        found[rel] = (None if path.is_dir() else path.read_bytes(), mode)
    return found


def stored(store: Path) -> dict[str, tuple[Path, int, int]]:
    """Every content in the snapshot store rooted at ``store``, by digest: (its blob file, 0,
    its size) or (its pack, offset, size), from the packs' footers."""
    found = {p.name: (p, 0, p.stat().st_size) for p in (store / "blobs").rglob("*") if p.is_file()}
    for pack in sorted((store / "packs").glob("*.pack")):
        for digest, offset, size in read_footer(str(pack))[1]:
            found.setdefault(digest, (pack, offset, size))
    return found


def blob_names(store: Path) -> set[str]:
    """The names (digests) of every content in the snapshot store rooted at ``store``."""
    return set(stored(store))


def content_at(store: Path, content: bytes) -> tuple[Path, int]:
    """The file (a blob, or a pack) and offset holding ``content``, found by its bytes (the
    tests do not hash)."""
    (found,) = [
        (path, offset)
        for path, offset, size in stored(store).values()
        if size == len(content) and path.read_bytes()[offset : offset + size] == content
    ]
    return found


def damage(path: Path, offset: int, size: int) -> None:
    """Flip the bytes of ``path`` from ``offset`` on (``size`` of them): same size, other bytes."""
    data = bytearray(path.read_bytes())
    data[offset : offset + size] = bytes(b ^ 0xFF for b in data[offset : offset + size])
    path.write_bytes(bytes(data))


def make_db(path: Path, rows: int = 2000) -> Path:
    """A SQLite database with two tables and an index."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, blob BLOB)")
        conn.execute("CREATE INDEX item_name ON item (name)")
        conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT)")
        conn.executemany(
            "INSERT INTO item (name, blob) VALUES (?, ?)",
            ((f"name-{i}", os.urandom(200)) for i in range(rows)),
        )
        conn.execute("INSERT INTO meta VALUES ('version', '7')")
    conn.close()
    return path


def dump(path: Path) -> list[str]:
    """The database as SQL text, to compare two databases."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def builtin_app(data_dir: Path) -> App:
    return default_app(SimpleNamespace(data_dir=str(data_dir)))


@pytest.fixture
def worker_caps() -> EntryCaps | None:
    """The worker's caps on logs, errors and resources (None: the defaults); override per module."""
    return None


@pytest.fixture
async def service(
    tmp_path: Path, builtin_app: App, worker_caps: EntryCaps | None
) -> AsyncIterator[Service]:
    """A Service and a running Worker (fast timings) over a real SQLite store."""
    store = open_store(f"sqlite:///{tmp_path}/ops.db")
    await store.open()
    worker = Worker(
        store,
        builtin_app,
        slots=8,
        lease_seconds=3.0,
        flush_interval=0.05,
        poll_interval=0.1,
        reaper_interval=0.2,
        entry_caps=worker_caps,
    )
    await worker.start()
    try:
        yield Service(store, builtin_app)
    finally:
        await worker.stop(grace=0)
        await store.close()


async def settled(service: Service, op_id: str, timeout: float = 20.0) -> Operation:
    """The operation once terminal; fails after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        op = await service.get(op_id)
        if op.status.is_terminal:
            return op
        if loop.time() > deadline:
            raise AssertionError(f"{op_id} still {op.status.value} after {timeout} s")
        await service.store.wait_for_change(0.1)


async def reaches(service: Service, op_id: str, check: Any, timeout: float = 20.0) -> Operation:
    """The operation once ``check(op)`` holds; fails after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        op = await service.get(op_id)
        if check(op):
            return op
        if loop.time() > deadline:
            raise AssertionError(f"{op_id} did not get there: {op.status.value} {op.progress}")
        await service.store.wait_for_change(0.05)


@pytest.fixture
def in_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small trees too go to the worker processes (they would stay on threads)."""
    monkeypatch.setattr(take_pool, "MIN_BYTES", 0)
    monkeypatch.setattr(take_pool, "MIN_FILES", 2)


class _OnProgress(RecordingContext):
    """Runs ``action`` once, on the first progress report with bytes done."""

    action: Callable[[], None] = staticmethod(lambda: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._once = threading.Event()

    def progress(self, percent: float | None = None, **kwargs: Any) -> None:
        super().progress(percent, **kwargs)
        if kwargs.get("bytes_done") and not self._once.is_set():
            self._once.set()
            type(self).action()


@pytest.fixture
def on_progress(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], None]], None]]:
    def install(action: Callable[[], None]) -> None:
        monkeypatch.setattr(_OnProgress, "action", staticmethod(action))
        monkeypatch.setattr(testing, "RecordingContext", _OnProgress)

    yield install
