"""The pure dialect mappings: protocols.md §5 for every status, times, progress and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from longrun.api.dialects import azure, azure_legacy, cohesity, google, oci
from longrun.model import LogEntry, LogLevel, Operation, OperationErrorInfo, Progress, Status

T0 = datetime(2026, 11, 26, 18, 26, 26, 71000, tzinfo=UTC)
ID = "01a21ae7-1e63-7000-8f64-daca82c00f5a"


def make(status: Status, **fields: Any) -> Operation:
    """An operation in ``status`` with the fields that status implies."""
    started = status not in (Status.ACCEPTED, Status.ON_HOLD, Status.MISSED)
    values: dict[str, Any] = {
        "id": ID,
        "operation_type": "demo.hash",
        "compartment_id": "c1",
        "status": status,
        "time_accepted": T0,
        "time_started": T0 + timedelta(seconds=1) if started else None,
        "last_action_time": T0 + timedelta(seconds=3),
        "time_finished": T0 + timedelta(seconds=4) if status.is_terminal else None,
        "percent_complete": 100.0 if status.is_terminal else 40.0,
        "progress": Progress(bytes_done=400, bytes_total=1000),
    }
    if status in (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS):
        values["result"] = {"digest": "abc"}
        values["resource_location"] = "/data/file"
    if status is Status.SUCCEEDED_WITH_WARNINGS:
        values["logs"] = [LogEntry(timestamp=T0, level=LogLevel.WARNING, message="slow disk")]
    if status is Status.FAILED:
        values["errors"] = [
            OperationErrorInfo(
                code="DiskFull", message="no space left", target="input.path", timestamp=T0
            )
        ]
    values.update(fields)
    return Operation(**values)


TABLE = [
    # status, azure, arm, google (done, state), oci, cohesity, legacy
    (Status.ACCEPTED, "NotStarted", "Accepted", False, "PENDING", "ACCEPTED", "kAccepted", "notstarted"),
    (Status.ON_HOLD, "NotStarted", "Accepted", False, "ON_HOLD", "ACCEPTED", "kOnHold", "notstarted"),
    (Status.IN_PROGRESS, "Running", "InProgress", False, "RUNNING", "IN_PROGRESS", "kRunning", "running"),
    (Status.CANCELING, "Running", "InProgress", False, "CANCELLING", "CANCELING", "kCanceling", "running"),
    (Status.SUCCEEDED, "Succeeded", "Succeeded", True, "SUCCEEDED", "SUCCEEDED", "kSuccess", "succeeded"),
    (Status.SUCCEEDED_WITH_WARNINGS, "Succeeded", "Succeeded", True, "SUCCEEDED_WITH_WARNINGS", "SUCCEEDED", "kWarning", "succeeded"),
    (Status.FAILED, "Failed", "Failed", True, "FAILED", "FAILED", "kFailure", "failed"),
    (Status.CANCELED, "Canceled", "Canceled", True, "CANCELLED", "CANCELED", "kCanceled", "failed"),
    (Status.MISSED, "Failed", "Failed", True, "MISSED", "FAILED", "kMissed", "failed"),
]  # fmt: skip


@pytest.mark.parametrize("row", TABLE, ids=lambda r: r[0].value)
def test_every_status_maps_as_the_table_says(row: tuple[Any, ...]) -> None:
    status, az, arm, done, state, oci_status, k_value, legacy = row
    op = make(status)
    assert azure.status_monitor(op)["status"] == az
    assert azure.arm_status(op, "westus")["status"] == arm
    body = google.google_operation(op)
    assert (body["done"], body["metadata"]["value"]["state"]) == (done, state)
    assert oci.work_request(op)["status"] == oci_status
    assert cohesity.copy_task_status(op)["status"] == k_value
    assert azure_legacy.operation_status(op)["status"] == legacy


def test_azure_monitor_fields_and_flags() -> None:
    running = azure.status_monitor(make(Status.IN_PROGRESS))
    assert running == {
        "id": ID,
        "status": "Running",
        "operationType": "demo.hash",
        "percentComplete": 40.0,
        "createdDateTime": "2026-11-26T18:26:26.071000Z",
        "lastActionDateTime": "2026-11-26T18:26:29.071000Z",
        "startedDateTime": "2026-11-26T18:26:27.071000Z",
    }
    assert azure.status_monitor(make(Status.ON_HOLD))["onHold"] is True
    assert azure.status_monitor(make(Status.CANCELING))["cancelRequested"] is True
    warned = azure.status_monitor(make(Status.SUCCEEDED_WITH_WARNINGS))
    assert (warned["result"], warned["warnings"]) == ({"digest": "abc"}, ["slow disk"])
    assert "resourceLocation" not in warned  # azure-core would GET it as the final result


def test_azure_errors_are_odata_and_missed_has_a_code() -> None:
    failed = azure.status_monitor(make(Status.FAILED))["error"]
    assert failed == {
        "code": "DiskFull",
        "message": "no space left",
        "target": "input.path",
        "details": [],
    }
    assert azure.status_monitor(make(Status.MISSED))["error"]["code"] == "Missed"
    assert azure.arm_status(make(Status.MISSED), "westus")["error"]["code"] == "Missed"
    assert "error" not in azure.status_monitor(make(Status.SUCCEEDED))


def test_arm_status_shape() -> None:
    body = azure.arm_status(make(Status.SUCCEEDED), "westus")
    assert body["id"] == (
        f"/subscriptions/c1/providers/Longrun.Operations/locations/westus/operationStatuses/{ID}"
    )
    assert (body["name"], body["startTime"], body["endTime"]) == (
        ID,
        "2026-11-26T18:26:27.071000Z",
        "2026-11-26T18:26:30.071000Z",
    )
    assert body["properties"]["result"] == {"digest": "abc"}


def test_google_operation_is_strict_proto_json() -> None:
    from google.longrunning import operations_pb2
    from google.protobuf import json_format, struct_pb2
    from google.rpc import error_details_pb2

    assert struct_pb2.Struct and error_details_pb2.ErrorInfo  # registers the @types used

    for status in Status:
        body = google.google_operation(make(status), "us")
        parsed = json_format.ParseDict(body, operations_pb2.Operation())  # no unknown field allowed
        assert parsed.name == f"projects/c1/locations/us/operations/{ID}"
        assert parsed.done is status.is_terminal
    failed = google.google_operation(make(Status.FAILED))["error"]
    assert (failed["code"], failed["message"]) == (2, "no space left")
    assert failed["details"][0]["reason"] == "DiskFull"
    assert google.google_operation(make(Status.CANCELED))["error"]["code"] == 1
    assert google.google_operation(make(Status.MISSED))["error"]["code"] == 4
    scalar = google.google_operation(make(Status.SUCCEEDED, result=7))
    assert scalar["response"]["value"] == {"value": 7}


def test_google_big_byte_counts_are_strings() -> None:
    big = make(Status.IN_PROGRESS, progress=Progress(bytes_done=2**60, bytes_total=2**61))
    meta = google.google_operation(big)["metadata"]["value"]
    assert (meta["bytesDone"], meta["bytesTotal"]) == (str(2**60), str(2**61))
    assert google.operation_from_google(google.google_operation(big)).progress.bytes_done == 2**60


def test_oci_errors_logs_and_resources() -> None:
    assert oci.work_request_errors(make(Status.FAILED)) == [
        {"code": "DiskFull", "message": "no space left", "timestamp": "2026-11-26T18:26:26.071000Z"}
    ]
    assert oci.work_request_errors(make(Status.MISSED))[0]["code"] == "Missed"
    assert oci.work_request_logs(make(Status.SUCCEEDED_WITH_WARNINGS)) == [
        {"message": "WARNING: slow disk", "timestamp": "2026-11-26T18:26:26.071000Z"}
    ]
    body = oci.work_request(make(Status.IN_PROGRESS))
    assert body["timeUpdated"] == "2026-11-26T18:26:29.071000Z"
    assert body["percentComplete"] == 40.0
    assert oci.work_request_summary(make(Status.IN_PROGRESS))["workRequestId"] == ID


def test_cohesity_times_stats_and_error() -> None:
    body = cohesity.copy_task_status(make(Status.FAILED))
    assert body["taskStartTimeUsecs"] == 1795717587071000
    assert body["taskEndTimeUsecs"] == 1795717590071000
    assert body["stats"]["logicalBytesTransferred"] == 400
    assert body["stats"]["logicalSizeBytes"] == 1000
    assert body["stats"]["logicalTransferRateBps"] == 133
    assert body["error"] == "DiskFull: no space left"
    assert "error" not in cohesity.copy_task_status(make(Status.SUCCEEDED))
    assert cohesity.copy_task_status(make(Status.MISSED))["error"].startswith("Missed: ")


def test_legacy_operation_status() -> None:
    done = azure_legacy.operation_status(make(Status.SUCCEEDED))
    assert done == {
        "status": "succeeded",
        "createdTime": "2026-11-26T18:26:26.071000Z",
        "lastActionTime": "2026-11-26T18:26:29.071000Z",
        "resourceLocation": "/data/file",
    }
    assert azure_legacy.operation_status(make(Status.FAILED))["message"] == "no space left"


def test_legacy_operation_progress_result() -> None:
    backup = make(
        Status.IN_PROGRESS,
        progress=Progress(
            bytes_done=102,
            bytes_total=1024,
            properties={"object_type": "BackupAndExportResponse", "backup_metadata": "{}"},
        ),
        resource_location="/backups/b1",
    )
    child = make(Status.SUCCEEDED, id="01a21ae7-1e63-7000-8f64-daca82c00f5b")
    body = azure_legacy.operation_progress(backup, "westus", [child])
    assert body["name"] == ID
    assert body["status"] == "InProgress"
    assert body["resourceId"] == "/backups/b1"
    assert body["properties"] == {
        "objectType": "BackupAndExportResponse",
        "backupMetadata": "{}",
        "dataTransferredInBytes": 102,
        "datasourceSizeInBytes": 1024,
    }
    assert [o["status"] for o in body["operations"]] == ["Succeeded"]
    eta = T0 + timedelta(hours=1)
    restore = make(
        Status.IN_PROGRESS,
        estimated_completion_time=eta,
        progress=Progress(properties={"object_type": "ImportFromStorageResponse"}),
    )
    assert azure_legacy.operation_progress(restore, "westus")["properties"] == {
        "objectType": "ImportFromStorageResponse",
        "estimatedCompletionTime": "2026-11-26T19:26:26.071000Z",
    }
    failed = azure_legacy.operation_progress(make(Status.FAILED), "westus")["error"]
    assert failed["code"] == "DiskFull"
