"""The demo operation types, each driven alone with longrun.testing.run_handler."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from longrun.builtin import default_app
from longrun.model import InvalidInput, Status
from longrun.testing import run_handler

APP = default_app()
HASH = APP.get("demo.hash")
SLEEP = APP.get("demo.sleep")


def test_default_app_holds_the_demo_types() -> None:
    assert {"demo.hash", "demo.sleep"} <= set(APP.names())
    assert default_app() is not default_app()  # a fresh App each time: callers may extend it


def test_hash_reports_bytes_resource_location_and_result(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"x" * 5000)
    run = run_handler(HASH, {"path": str(target), "chunk_size": 1024})
    assert run.status is Status.SUCCEEDED, run.error
    assert run.result == {
        "digest": hashlib.sha256(b"x" * 5000).hexdigest(),
        "algorithm": "sha256",
        "size": 5000,
    }
    assert run.resource_location == str(target.resolve())
    assert [(r.entity_type, r.action_type.value) for r in run.resources] == [("file", "RELATED")]
    done = [c["bytes_done"] for c in run.progress_calls if "bytes_done" in c]
    assert done == [0, 1024, 2048, 3072, 4096, 5000, 5000]
    assert run.percent_complete == 100
    assert run.messages[0].startswith("hashing") and run.result["digest"] in run.messages[-1]


def test_hash_of_an_empty_file(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.write_bytes(b"")
    run = run_handler(HASH, {"path": str(target), "algorithm": "blake2b"})
    assert run.status is Status.SUCCEEDED
    assert run.result["digest"] == hashlib.blake2b(b"").hexdigest()


def test_hash_of_a_missing_file_fails_with_file_not_found(tmp_path: Path) -> None:
    run = run_handler(HASH, {"path": str(tmp_path / "nope")})
    assert run.status is Status.FAILED
    assert [(e.code, e.target) for e in run.errors] == [("FileNotFound", "input.path")]


def test_hash_of_a_directory_fails_with_not_a_file(tmp_path: Path) -> None:
    run = run_handler(HASH, {"path": str(tmp_path)})
    assert run.status is Status.FAILED and run.errors[0].code == "NotAFile"


def test_hash_stops_between_chunks_when_canceled(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"y" * 10_000)
    run = run_handler(HASH, {"path": str(target), "chunk_size": 1000}, cancel_after_progress=3)
    assert run.status is Status.CANCELED
    assert max(c.get("bytes_done", 0) for c in run.progress_calls) < 10_000


def test_hash_throttles_with_a_cancellable_sleep(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"z" * 4096)
    # 512 B/s would take 8 s; the cancel after the second report ends it at once
    run = run_handler(
        HASH,
        {"path": str(target), "chunk_size": 1024, "throttle_bytes_per_second": 512},
        cancel_after_progress=2,
    )
    assert run.status is Status.CANCELED


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"path": ""},
        {"path": "f", "algorithm": "md5"},
        {"path": "f", "chunk_size": 1},
        {"path": "f", "chunk_size": 1 << 30},
        {"path": "f", "throttle_bytes_per_second": 0},
    ],
)
def test_hash_input_is_bounded(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        HASH.validate_input(bad)


def test_sleep_counts_its_steps() -> None:
    run = run_handler(SLEEP, {"seconds": 0.05, "steps": 5})
    assert run.status is Status.SUCCEEDED
    assert run.result == {"slept": 0.05, "steps": 5, "attempt": 1}
    assert [c["items_done"] for c in run.progress_calls] == [0, 1, 2, 3, 4, 5]
    assert run.percent_complete == 100


def test_sleep_wakes_up_on_cancel() -> None:
    run = run_handler(SLEEP, {"seconds": 3600, "steps": 2}, cancel_after_progress=1)
    assert run.status is Status.CANCELED


@pytest.mark.parametrize("bad", [{"seconds": 3601}, {"seconds": -1}, {"steps": 0}])
def test_sleep_input_is_bounded(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        SLEEP.validate_input(bad)
