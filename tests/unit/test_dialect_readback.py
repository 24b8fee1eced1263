"""Model compatibility: the dialect views read back into the native model where they carry enough."""

from __future__ import annotations

import pytest

from longrun.api.dialects import azure, google, oci
from longrun.model import Operation, Status
from tests.unit.test_dialect_mappings import make

# what each view carries (MISSED and warnings survive as a code or a flag, not as records)
CARRIED = {"id", "operation_type", "compartment_id", "status", "percent_complete"}
TIMES = {"time_accepted", "time_started", "last_action_time", "time_finished"}


def _same(back: Operation, op: Operation, fields: set[str]) -> None:
    assert {f: getattr(back, f) for f in fields} == {f: getattr(op, f) for f in fields}


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_google_reads_back_every_field_it_carries(status: Status) -> None:
    op = make(status)
    back = google.operation_from_google(google.google_operation(op))
    fields = CARRIED | TIMES | {"resource_location", "attempt", "result"}
    _same(back, op, fields)
    assert back.progress.bytes_done == op.progress.bytes_done
    if status is Status.FAILED:
        assert [(e.code, e.message, e.target) for e in back.errors] == [
            ("DiskFull", "no space left", "input.path")
        ]


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_azure_monitor_reads_back(status: Status) -> None:
    op = make(status)
    back = azure.operation_from_monitor(azure.status_monitor(op), "c1")
    _same(back, op, CARRIED | TIMES | {"result"})
    assert [e.code for e in back.errors] == [e.code for e in op.errors]


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_oci_work_request_reads_back(status: Status) -> None:
    op = make(status)
    back = oci.operation_from_work_request(oci.work_request(op))
    expected = Status.SUCCEEDED if status is Status.SUCCEEDED_WITH_WARNINGS else status
    assert back.status is expected  # OCI has no word for warnings; they are in /logs
    _same(back, op, (CARRIED - {"status"}) | TIMES | {"resources"})
    assert [(e.code, e.message) for e in back.errors] == [(e.code, e.message) for e in op.errors]


def test_read_back_views_are_native_models_with_the_generated_client_api() -> None:
    op = make(Status.SUCCEEDED)
    back = google.operation_from_google(google.google_operation(op))
    assert Operation.from_json(back.to_json()) == back
    assert Operation.from_dict(back.to_dict()) == back
