"""Canceling a take or an apply through a real worker ends CANCELED promptly, leaving nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

from longrun.model import Status
from longrun.service import Service
from tests.builtin.conftest import reaches, settled, tree_of

_PROMPT = 1.5  # seconds from the cancel request to CANCELED (the issue asks for about one)


def _big(path: Path, mib: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        block = os.urandom(1 << 20)
        for n in range(mib):
            handle.write(block[n:] + block[:n])
    return path


async def _cancel_when_moving(service: Service, op_id: str) -> float:
    await reaches(service, op_id, lambda op: (op.progress.bytes_done or 0) > 0)
    started = time.monotonic()
    await service.cancel(op_id)
    done = await settled(service, op_id, timeout=10)
    assert done.status is Status.CANCELED, (done.status, done.errors)
    return time.monotonic() - started


async def test_a_canceled_take_stops_within_a_second(
    service: Service, tmp_path: Path, data_dir: Path
) -> None:
    source = _big(tmp_path / "src" / "big.bin")
    op, _ = await service.submit(
        "snapshot.take", {"source": str(source.parent), "throttle_bytes_per_second": 16 << 20}
    )
    assert await _cancel_when_moving(service, op.id) < _PROMPT
    assert list((data_dir / "snapshots" / "manifests").iterdir()) == []
    assert list((data_dir / "snapshots" / "tmp").iterdir()) == []


async def test_a_canceled_apply_stops_within_a_second_and_keeps_the_target(
    service: Service, tmp_path: Path
) -> None:
    source = _big(tmp_path / "src" / "big.bin")
    op, _ = await service.submit("snapshot.take", {"source": str(source.parent)})
    snapshot_id = (await settled(service, op.id)).resource_location
    target = tmp_path / "target"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    op, _ = await service.submit(
        "snapshot.apply",
        {
            "snapshot_id": snapshot_id,
            "target": str(target),
            "replace": True,
            "throttle_bytes_per_second": 16 << 20,
        },
    )
    assert await _cancel_when_moving(service, op.id) < _PROMPT
    assert tree_of(target) == {"mine.txt": (b"keep me", 0o644)}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
