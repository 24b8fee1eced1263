"""The CLI's local pieces: input parsing, exit codes, the rate of the live bar, the verb list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longrun.cli import app
from longrun.cli._app import exit_code
from longrun.cli._render import Rate
from longrun.cli._verbs import parse_input
from longrun.client import Unreachable
from longrun.model import (
    IllegalTransition,
    InternalError,
    InvalidInput,
    LongrunError,
    NotFound,
    Operation,
    OperationError,
    Progress,
    Status,
)


def test_input_is_json_text_or_a_file(tmp_path: Path) -> None:
    assert parse_input(None) is None
    assert parse_input('{"a": 1}') == {"a": 1}
    spec = tmp_path / "in.json"
    spec.write_text('{"path": "x"}', encoding="utf-8")
    assert parse_input(f"@{spec}") == {"path": "x"}
    with pytest.raises(InvalidInput, match="not JSON"):
        parse_input("{nope")
    with pytest.raises(InvalidInput, match="cannot read"):
        parse_input(f"@{tmp_path / 'missing.json'}")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput(), 2),
        (NotFound(), 2),
        (IllegalTransition(), 2),
        (InternalError(), 1),
        (OperationError("Custom", "boom"), 1),
        (Unreachable(), 3),
    ],
)
def test_exit_codes(error: LongrunError, code: int) -> None:
    assert exit_code(error) == code


def _at(seconds: float, done: int) -> Operation:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    return Operation(
        id="x",
        operation_type="demo.hash",
        compartment_id="default",
        status=Status.IN_PROGRESS,
        time_accepted=start,
        last_action_time=start + timedelta(seconds=seconds),
        progress=Progress(bytes_done=done, bytes_total=10_000),
    )


def test_rate_is_bytes_per_second_between_states() -> None:
    rate = Rate()
    assert rate.observe(_at(0, 0)) is None
    assert rate.observe(_at(0, 0)) is None  # the same state again tells nothing
    assert rate.observe(_at(2, 2000)) == 1000
    assert rate.observe(_at(3, 5000)) == 2000  # smoothed: (3000 + 1000) / 2


def test_every_verb_is_there() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for verb in ("serve", "worker", "submit", "status", "list", "cancel", "hold", "release",
                 "delete", "logs", "watch", "types"):  # fmt: skip
        assert verb in result.output


def test_bad_input_is_refused_before_any_request() -> None:
    result = CliRunner().invoke(app, ["--url", "http://127.0.0.1:9", "submit", "x", "-i", "{"])
    assert result.exit_code == 2
    assert "InvalidInput: --input is not JSON" in result.output
