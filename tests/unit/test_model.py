"""The wire model: camelCase JSON, round trips, time-ordered ids and the error tree."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from longrun.model import (
    InvalidInput,
    LongrunError,
    NotFound,
    Operation,
    OperationError,
    Progress,
    Status,
    error_class,
    is_operation_id,
    new_id,
)
from longrun.model.policy import MAX_BACKOFF_SECONDS, backoff_seconds


def test_ids_are_unique_sortable_uuid7() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(is_operation_id(i) and i[14] == "7" for i in ids[:100])
    assert not is_operation_id("not-an-id") and not is_operation_id(ids[0].upper())


def _op(**fields: object) -> Operation:
    now = datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC)
    data: dict[str, object] = {"id": new_id(), "operation_type": "t", "compartment_id": "c",
                               "status": Status.IN_PROGRESS, "time_accepted": now, "last_action_time": now}
    data.update(fields)
    return Operation(**data)  # type: ignore[arg-type]


def test_wire_json_is_camel_case_with_z_times() -> None:
    op = _op(progress=Progress(bytes_done=5, properties={"backup_metadata": {"k": "v"}}))
    body = op.to_dict()
    assert body["operationType"] == "t" and body["percentComplete"] == 0.0
    assert body["timeAccepted"] == "2026-03-01T08:30:00.123456Z"
    assert body["progress"]["bytesDone"] == 5
    assert body["progress"]["properties"] == {"backupMetadata": {"k": "v"}}
    assert "operation_type" not in op.to_json()


@given(
    percent=st.floats(min_value=0, max_value=100),
    done=st.integers(min_value=0, max_value=2**53),
    payload=st.dictionaries(st.text(min_size=1, max_size=8), st.integers() | st.text(max_size=8), max_size=4),
)
def test_round_trip_through_json_and_dict(percent: float, done: int, payload: dict[str, object]) -> None:
    op = _op(percent_complete=percent, progress=Progress(bytes_done=done), input=payload, result=payload)
    assert Operation.from_json(op.to_json()) == op
    assert Operation.from_dict(op.to_dict()) == op


def test_error_tree_codes_and_bodies() -> None:
    err = NotFound(target="id")
    assert err.code == "NotFound" and err.http_status == 404 and err.message == "No such operation."
    assert err.to_body() == {"error": {"code": "NotFound", "message": "No such operation.", "target": "id", "details": []}}
    assert error_class("InvalidInput") is InvalidInput and error_class("Nope") is None
    custom = OperationError("SnapshotFailed", "disk full", target="/data")
    assert isinstance(custom, LongrunError) and custom.code == "SnapshotFailed"


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(1.5, a) for a in (1, 2, 3)] == [1.5, 3.0, 6.0]
    assert backoff_seconds(1.0, 100) == MAX_BACKOFF_SECONDS and backoff_seconds(0, 3) == 0


def test_a_forked_child_does_not_repeat_the_parents_random_bits() -> None:
    import os

    from longrun.model import ids

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next random bits and leave at once
        os.write(write, str(ids._random.getrandbits(62)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = int(os.read(read, 64))
    assert child != ids._random.getrandbits(62)
