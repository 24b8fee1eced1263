"""Blobs: every size round-trips and is stored once; a put stopped midway leaves nothing; starting
a file's writeback is advice that never fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import blake3
import pytest

from longrun.builtin.snapshot_store import CHUNK, SnapshotStore
from longrun.builtin.write_behind import start_writeback
from tests.builtin.conftest import blob_names

PAGE = 4096
SIZES = [0, 1, PAGE - 1, PAGE, PAGE + 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + PAGE + 7]


def _put(store: SnapshotStore, path: Path, tick: Any = None) -> tuple[str, int, bool]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return store.put_file(fd, tick)
    finally:
        os.close(fd)


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "store").ensure()


@pytest.mark.parametrize("size", SIZES)
def test_a_file_of_any_size_is_stored_byte_for_byte_once(
    tmp_path: Path, store: SnapshotStore, size: int
) -> None:
    source = tmp_path / "source"
    content = os.urandom(size)
    source.write_bytes(content)
    digest, stored_size, stored = _put(store, source)
    assert (digest, stored_size, stored) == (blake3.blake3(content).hexdigest(), size, True)
    assert store.blob_path(digest).read_bytes() == content
    assert _put(store, source) == (digest, size, False)  # the same content: not stored again
    assert blob_names(store.root) == {digest}
    assert list(store.tmp.iterdir()) == []


def test_a_put_stopped_midway_leaves_no_blob_and_no_temp_file(
    tmp_path: Path, store: SnapshotStore
) -> None:
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3 * CHUNK))

    ticks: list[int] = []

    def tick(moved: int) -> None:  # stops the put at its second chunk, the file half-written
        ticks.append(moved)
        if len(ticks) == 2:
            raise KeyboardInterrupt  # any exception: a cancel, a failure elsewhere

    with pytest.raises(KeyboardInterrupt):
        _put(store, source, tick)
    assert blob_names(store.root) == set()
    assert list(store.tmp.iterdir()) == []


def test_writeback_starts_on_a_file_and_is_harmless_where_it_cannot(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    content = os.urandom(3 * CHUNK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        os.write(fd, content)
        start_writeback(fd)
        start_writeback(fd)  # again, with the pages under writeback or clean
    finally:
        os.close(fd)
    assert path.read_bytes() == content
    read, write = os.pipe()  # no page cache behind it: both calls refuse, quietly
    try:
        start_writeback(write)
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.parametrize("size", [CHUNK - 1, 3 * CHUNK + 7])
def test_stored_content_met_again_counts_nothing_written(
    tmp_path: Path, store: SnapshotStore, size: int
) -> None:
    """A large file's copy is only known to be a duplicate once it is read: it is then dropped
    before its writeback starts, and the writes a take counts (for its syncs) leave it out."""
    source = tmp_path / "source"
    source.write_bytes(os.urandom(size))
    written = []
    for _ in range(2):
        fd = os.open(source, os.O_RDONLY)
        try:
            written.append(store.writer.put(fd)[3])
        finally:
            os.close(fd)
    assert written == [size, 0]
    assert list(store.tmp.iterdir()) == []
