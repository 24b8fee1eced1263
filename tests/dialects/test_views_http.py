"""The views without a poller (Cohesity, OperationStatus, OperationProgressResult) over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.dialects.conftest import Server, until

TIMEOUT = 30


@pytest.fixture(scope="module")
def http(server: Server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def _cohesity_start(http: httpx.Client, body: dict[str, object], op_type: str) -> str:
    response = http.post(f"/cohesity/co/operationTypes/{op_type}/copyTasks", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "kAccepted"
    return str(response.json()["id"])


def _finished(http: httpx.Client, url: str, key: str, values: set[str]) -> dict[str, object]:
    return until(
        lambda: (body := http.get(url).json()).get(key) in values and body,
        TIMEOUT,
        f"{url} {key} in {values}",
    )


def test_cohesity_success_with_stats(http: httpx.Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.bin"
    path.write_bytes(b"y" * 4096)
    op_id = _cohesity_start(http, {"path": str(path), "chunkSize": 1024}, "demo.hash")
    body = _finished(http, f"/cohesity/co/copyTasks/{op_id}", "status", {"kSuccess"})
    assert body["stats"]["logicalBytesTransferred"] == 4096
    assert body["stats"]["logicalSizeBytes"] == 4096
    assert body["taskEndTimeUsecs"] >= body["taskStartTimeUsecs"] > 1_000_000_000_000_000
    legacy = http.get(f"/azure/co/operationStatus/{op_id}").json()
    assert legacy["status"] == "succeeded"
    assert legacy["resourceLocation"] == str(path.resolve())


def test_cohesity_failure_and_error_shape(http: httpx.Client) -> None:
    op_id = _cohesity_start(http, {"path": "/no/such/file"}, "demo.hash")
    body = _finished(http, f"/cohesity/co/copyTasks/{op_id}", "status", {"kFailure"})
    assert body["error"] == "FileNotFound: no such file: /no/such/file"
    legacy = http.get(f"/azure/co/operationStatus/{op_id}").json()
    assert (legacy["status"], legacy["message"]) == ("failed", "no such file: /no/such/file")
    missing = http.get(f"/cohesity/other/copyTasks/{op_id}")  # another compartment
    assert missing.status_code == 404
    assert missing.json() == {"errorCode": "NotFound", "message": "No such operation."}
    bad = http.post("/cohesity/co/operationTypes/demo.sleep/copyTasks", json={"seconds": -1})
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "InvalidInput")


def test_operation_progress_result(http: httpx.Client) -> None:
    arm = "/subscriptions/co/providers/Longrun.Operations/locations/westus"
    started = http.post(f"{arm}/operationTypes/demo.sleep/start", json={"seconds": 0, "steps": 1})
    op_id = started.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[-1]
    body = _finished(http, f"{arm}/operationProgress/{op_id}", "status", {"Succeeded"})
    assert body["id"] == f"{arm}/operationProgress/{op_id}"
    assert (body["name"], body["percentComplete"]) == (op_id, 100.0)
    assert "endTime" in body


def test_errors_never_carry_retry_after(http: httpx.Client) -> None:
    for url in (
        "/azure/co/operations/nope",
        "/v1/projects/co/locations/l/operations/nope",
        "/20160918/workRequests/nope",
        "/cohesity/co/copyTasks/nope",
    ):
        response = http.get(url)
        assert response.status_code == 404, url
        assert "retry-after" not in response.headers, url
