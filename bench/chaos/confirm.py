"""Soak bookkeeping for the "lost" check: confirm each accepted id settled while it still exists."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.chaos.invariants import TERMINAL
from longrun.store import open_store

__all__ = ["Confirmed", "Confirmer", "vanish_horizon"]


@dataclass(frozen=True)
class Confirmed:
    """An accepted id seen settled: a terminal operation (finished at) or a tombstone (purged at)."""

    op: str
    how: str  # "terminal" | "tombstone"
    at: datetime  # time_finished, or purged_at


def vanish_horizon(seen: Confirmed, retention: float, tombstone_retention: float) -> datetime:
    """The earliest moment its tombstone may legitimately have expired.

    A terminal operation is purged no sooner than ``retention`` after it finished, and its
    tombstone expires no sooner than ``tombstone_retention`` after the purge; an id that vanished
    before that was lost, whatever was seen of it earlier.
    """
    tail = timedelta(seconds=tombstone_retention)
    if seen.how == "terminal":
        tail += timedelta(seconds=retention)
    return seen.at + tail


class Confirmer:
    """Every ``interval`` seconds, in its own thread with its own store connection: read the new
    ``accepted`` lines of the clients' records and look up each id not yet confirmed."""

    def __init__(self, home: Path, db: str, interval: float) -> None:
        self.home = home
        self.db = db
        self.interval = interval
        self.confirmed: dict[str, Confirmed] = {}
        self.pending: set[str] = set()
        self.passes = 0
        self.errors = 0
        self._offsets: dict[Path, int] = {}
        self._out = home / "confirmed.jsonl"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-confirm", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop after one last pass (the settle may have finished the last ones)."""
        self._stop.set()
        self._thread.join(self.interval + 120)

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        store = open_store(self.db)
        await store.open()
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    await self.confirm_pass(store)
                except Exception:  # a restarting PostgreSQL: the next pass tries again
                    self.errors += 1
                if stopping:
                    return
        finally:
            await store.close()

    def _new_ids(self) -> list[str]:
        """Ids of ``accepted`` lines written since the last pass (whole lines only)."""
        ids: list[str] = []
        for path in sorted(self.home.glob("client-*.jsonl")):
            start = self._offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(start)
                chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            self._offsets[path] = start + end
            for line in chunk[:end].splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if row.get("ev") == "accepted":
                    ids.append(row["op"])
        return ids

    async def confirm_pass(self, store: Any) -> None:
        self.pending.update(i for i in self._new_ids() if i not in self.confirmed)
        found: list[Confirmed] = []
        for op_id in sorted(self.pending):
            op = await store.get(op_id)
            if op is not None:
                if op.status in TERMINAL and op.time_finished is not None:
                    found.append(Confirmed(op_id, "terminal", op.time_finished))
                continue
            tomb = await store.get_tombstone(op_id)
            if tomb is not None:
                found.append(Confirmed(op_id, "tombstone", tomb.purged_at))
        with self._out.open("a", encoding="utf-8") as out:
            for seen in found:
                self.confirmed[seen.op] = seen
                self.pending.discard(seen.op)
                out.write(json.dumps({"op": seen.op, "how": seen.how, "at": seen.at.isoformat()}))
                out.write("\n")
        self.passes += 1
