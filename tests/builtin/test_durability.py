"""The snapshot store's durability helpers: syncs along the way, and the final one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from longrun.builtin.durability import Flush, Writeback
from tests.support import until


def test_writeback_syncs_each_time_enough_was_written(tmp_path: Path) -> None:
    with Writeback(tmp_path, every=1000) as writeback:
        writeback.wrote(600)
        assert writeback.syncs == 0
        writeback.wrote(600)
        until(lambda: writeback.syncs == 1, timeout=10, what="a sync after 1000 bytes")
        writeback.wrote(999)
    assert writeback.syncs == 1


def test_leaving_writeback_on_an_error_stops_its_thread(tmp_path: Path) -> None:
    with pytest.raises(KeyError), Writeback(tmp_path) as writeback:
        writeback.wrote(10)
        raise KeyError("boom")
    assert writeback.syncs == 0
    assert not [t for t in threading.enumerate() if t.name == "longrun-writeback"]


def test_writeback_without_a_period_never_syncs_and_starts_no_thread(tmp_path: Path) -> None:
    with Writeback(tmp_path, every=None) as writeback:
        assert not [t for t in threading.enumerate() if t.name == "longrun-writeback"]
        writeback.wrote(1 << 40)
    assert writeback.syncs == 0


def test_flush_raises_in_the_waiting_thread(tmp_path: Path) -> None:
    flush = Flush(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        flush.wait()
