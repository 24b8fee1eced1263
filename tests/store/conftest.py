"""The store fixture: every contract test runs on every engine (SQLite here; PostgreSQL joins)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from longrun.model import ManualClock, Operation, Status, new_id
from longrun.store import Store, open_store
from longrun.store.base import NewOperation

ENGINES = ["sqlite"] + (["postgres"] if os.environ.get("LONGRUN_TEST_POSTGRES") else [])


def store_url(engine: str, tmp_path: Path) -> str:
    """A fresh, empty database of ``engine``."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return os.environ["LONGRUN_TEST_POSTGRES"]


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(store_url(request.param, tmp_path))
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))


def make_op(clock: ManualClock, **fields: Any) -> NewOperation:
    """A new ACCEPTED operation (override any field), wrapped for submit."""
    now = clock.now()
    extra = {k: fields.pop(k) for k in ("request_hash", "lost_worker_policy", "retry_backoff", "timeout") if k in fields}
    data: dict[str, Any] = {
        "id": new_id(),
        "operation_type": "test.op",
        "compartment_id": "c1",
        "status": Status.ACCEPTED,
        "input": {"n": 1},
        "time_accepted": now,
        "last_action_time": now,
        **fields,
    }
    return NewOperation(Operation(**data), **extra)


def later(clock: ManualClock, seconds: float) -> datetime:
    return clock.now() + timedelta(seconds=seconds)
