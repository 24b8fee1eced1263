"""SQLite: WAL checkpoints run on their own thread; commits never run one, the WAL stays bounded."""

from __future__ import annotations

import os
from pathlib import Path

from longrun.model import ManualClock
from longrun.store.sqlite import SQLiteStore
from tests.store.conftest import make_op
from tests.support import until


async def _write_round(store: SQLiteStore, clock: ManualClock, count: int) -> None:
    for _ in range(count):
        await store.submit(make_op(clock, input={"pad": "x" * 500}))


async def test_the_checkpointer_keeps_the_wal_bounded(tmp_path: Path, clock: ManualClock) -> None:
    store = SQLiteStore(tmp_path / "ck.db")
    await store.open()
    try:
        conns = store._conns
        assert conns._wconn is not None
        assert conns._wconn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        wal = Path(f"{tmp_path}/ck.db-wal")
        sizes = []
        for _ in range(6):  # each round alone writes MBs of WAL: it would grow sixfold uncopied
            done = conns.checkpointer.checkpoints
            await _write_round(store, clock, 200)
            until(lambda done=done: conns.checkpointer.checkpoints > done, timeout=10)
            sizes.append(os.path.getsize(wal))
        assert max(sizes) < 3 * sizes[0], sizes  # reused from its start after each checkpoint
        assert len(await store.changed_since(clock.now().replace(year=2000), limit=5000)) == 1200
    finally:
        await store.close()
    assert not Path(f"{tmp_path}/ck.db-wal").exists() or os.path.getsize(wal) == 0
    reopened = SQLiteStore(tmp_path / "ck.db")
    await reopened.open()
    try:
        assert len(await reopened.changed_since(clock.now().replace(year=2000), limit=5000)) == 1200
    finally:
        await reopened.close()
