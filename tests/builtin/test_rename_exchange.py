"""Swapping two folders in one step: both swapped, or where the system cannot, nothing moved."""

from __future__ import annotations

from pathlib import Path

import pytest

from longrun.builtin.rename_exchange import exchange
from tests.builtin.conftest import tree_of


def test_two_folders_swap_whole_in_one_step(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "sub").mkdir(parents=True)
    (a / "sub" / "one.txt").write_text("a's")
    b.mkdir()
    (b / "two.txt").write_text("b's")
    before_a, before_b = tree_of(a), tree_of(b)
    if not exchange(a, b):
        assert (tree_of(a), tree_of(b)) == (before_a, before_b)  # refused: nothing moved
        pytest.skip(f"no RENAME_EXCHANGE on the file system of {tmp_path}")
    assert (tree_of(a), tree_of(b)) == (before_b, before_a)


def test_an_exchange_with_a_missing_path_raises_and_moves_nothing(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (a / "kept.txt").write_text("still here")
    with pytest.raises(FileNotFoundError):
        exchange(a, tmp_path / "absent")
    assert tree_of(a) == {"kept.txt": (b"still here", (a / "kept.txt").stat().st_mode & 0o7777)}
