"""Blobs: every size round-trips, and starting a file's writeback is advice that never fails."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from longrun.builtin.snapshot_store import CHUNK, SnapshotStore
from longrun.builtin.write_behind import start_writeback

PAGE = 4096
SIZES = [0, 1, PAGE - 1, PAGE, PAGE + 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + PAGE + 7]


@pytest.mark.parametrize("size", SIZES)
def test_a_file_of_any_size_is_stored_byte_for_byte(tmp_path: Path, size: int) -> None:
    source = tmp_path / "source"
    content = os.urandom(size)
    source.write_bytes(content)
    store = SnapshotStore(tmp_path / "store").ensure()
    fd = os.open(source, os.O_RDONLY)
    try:
        digest, stored_size, stored = store.put_file(fd)
    finally:
        os.close(fd)
    assert (digest, stored_size, stored) == (blake3.blake3(content).hexdigest(), size, True)
    assert store.blob_path(digest).read_bytes() == content
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
