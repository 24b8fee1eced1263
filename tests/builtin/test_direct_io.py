"""Blobs written around the page cache: every size round-trips, and a refusal falls back."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from longrun.builtin.direct_io import PAGE, DirectWrites, aligned_buffer
from longrun.builtin.snapshot_store import CHUNK, SnapshotStore

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
    assert (digest, stored_size, stored) == (hashlib.sha256(content).hexdigest(), size, True)
    assert store.blob_path(digest).read_bytes() == content
    assert list(store.tmp.iterdir()) == []


def test_a_misaligned_buffer_is_refused_then_written_through_the_cache(tmp_path: Path) -> None:
    writes = DirectWrites()
    if not writes.enabled:
        pytest.skip("no O_DIRECT here")
    path = tmp_path / "blob"
    fd, direct = writes.create(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 3 * PAGE)
    buffer = aligned_buffer(4 * PAGE)
    content = os.urandom(3 * PAGE)
    buffer[1 : 1 + len(content)] = content
    try:
        still = writes.write(fd, memoryview(buffer)[1 : 1 + len(content)], direct)
    finally:
        os.close(fd)
    assert path.read_bytes() == content
    assert not still
    if direct:  # the file system took O_DIRECT at open, then refused the misaligned write
        assert not writes.enabled
