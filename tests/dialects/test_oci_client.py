"""The OCI SDK's WorkRequestClient (and API Gateway's, for cancel) with ``oci.wait_until``."""

from __future__ import annotations

from typing import Any

import oci
import pytest
import requests

from tests.dialects.conftest import Server, until

CONFIG = {
    "user": "ocid1.user.oc1..aaaa",
    "tenancy": "ocid1.tenancy.oc1..aaaa",
    "fingerprint": "11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00",
    "key_file": "/unused.pem",
    "region": "us-phoenix-1",
}
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED")
TIMEOUT = 30


class NoopSigner(requests.auth.AuthBase):
    """Sign nothing: the server takes any caller."""

    def __call__(self, request: Any) -> Any:
        return request


@pytest.fixture(scope="module")
def wrc(server: Server) -> oci.work_requests.WorkRequestClient:
    return oci.work_requests.WorkRequestClient(
        CONFIG, signer=NoopSigner(), service_endpoint=server.url
    )


@pytest.fixture(scope="module")
def gateway(server: Server) -> oci.apigateway.WorkRequestsClient:
    return oci.apigateway.WorkRequestsClient(
        CONFIG, signer=NoopSigner(), service_endpoint=server.url
    )


def _start(client: Any, compartment: str, op_type: str, input_: dict[str, Any]) -> str:
    response = client.base_client.call_api(
        resource_path=f"/operationTypes/{op_type}/actions/start",
        method="POST",
        body={"compartmentId": compartment, "input": input_},
        header_params={"content-type": "application/json", "accept": "application/json"},
    )
    assert response.status == 202
    assert response.headers["opc-request-id"]
    return str(response.headers["opc-work-request-id"])


def _wait(client: Any, wr_id: str) -> Any:
    return oci.wait_until(
        client,
        client.get_work_request(wr_id),
        evaluate_response=lambda r: r.data.status in TERMINAL,
        max_interval_seconds=1,
        max_wait_seconds=TIMEOUT,
    ).data


def test_success(wrc: Any) -> None:
    wr_id = _start(wrc, "oc1", "demo.sleep", {"seconds": 0.2, "steps": 2})
    work_request = _wait(wrc, wr_id)
    assert work_request.status == "SUCCEEDED"
    assert work_request.percent_complete == 100.0
    assert work_request.operation_type == "demo.sleep"
    assert work_request.compartment_id == "oc1"
    assert work_request.time_finished >= work_request.time_started >= work_request.time_accepted
    logs = wrc.list_work_request_logs(wr_id).data
    assert logs[-1].message == "awake"


def test_result_resource_of_a_hash(wrc: Any, tmp_path: Any) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 5000)
    wr_id = _start(wrc, "oc1", "demo.hash", {"path": str(path), "chunkSize": 1024})
    assert _wait(wrc, wr_id).status == "SUCCEEDED"
    resources = wrc.get_work_request(wr_id).data.resources
    assert [(r.entity_type, r.action_type, r.identifier) for r in resources] == [
        ("file", "RELATED", str(path.resolve()))
    ]


def test_failure_carries_longrun_code_and_message(wrc: Any) -> None:
    wr_id = _start(wrc, "oc1", "demo.hash", {"path": "/no/such/file"})
    assert _wait(wrc, wr_id).status == "FAILED"
    errors = wrc.list_work_request_errors(wr_id).data
    assert [(e.code, e.message) for e in errors] == [
        ("FileNotFound", "no such file: /no/such/file")
    ]


def test_api_errors_are_service_errors(wrc: Any) -> None:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        wrc.get_work_request("01000000-0000-7000-8000-000000000000")
    assert caught.value.status == 404
    assert caught.value.code == "NotFound"
    assert caught.value.request_id
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        wrc.base_client.call_api(resource_path="/workRequests", method="GET")
    assert caught.value.status == 400
    assert caught.value.code == "InvalidInput"


def test_cancel_goes_canceling_then_canceled(gateway: Any) -> None:
    wr_id = _start(gateway, "oc1", "demo.sleep", {"seconds": 30, "steps": 300})
    until(lambda: gateway.get_work_request(wr_id).data.status == "IN_PROGRESS", TIMEOUT, "running")
    response = gateway.cancel_work_request(wr_id)
    assert response.status == 202
    assert gateway.get_work_request(wr_id).data.status in ("CANCELING", "CANCELED")
    assert _wait(gateway, wr_id).status == "CANCELED"
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        gateway.cancel_work_request(wr_id)
    assert caught.value.code == "IllegalTransition"


def test_list_across_pages_in_both_shapes(wrc: Any, gateway: Any) -> None:
    ids = {_start(wrc, "oc-list", "demo.sleep", {"seconds": 0, "steps": 1}) for _ in range(5)}
    listed = oci.pagination.list_call_get_all_results(
        wrc.list_work_requests, "oc-list", limit=2
    ).data
    assert {w.id for w in listed} == ids
    first = gateway.list_work_requests("oc-list", limit=2)
    assert len(first.data.items) == 2
    assert first.next_page
    items = oci.pagination.list_call_get_all_results(
        gateway.list_work_requests, "oc-list", limit=2
    ).data
    assert {w.work_request_id for w in items} == ids  # API Gateway's name for the id


def test_logs_page_with_opc_next_page(wrc: Any) -> None:
    wr_id = _start(wrc, "oc1", "demo.sleep", {"seconds": 0.1, "steps": 2})
    _wait(wrc, wr_id)
    first = wrc.list_work_request_logs(wr_id, limit=1)
    assert len(first.data) == 1
    assert first.next_page
    every = oci.pagination.list_call_get_all_results(
        wrc.list_work_request_logs, wr_id, limit=1
    ).data
    assert [e.message for e in every][-1] == "awake"
    assert len(every) >= 2
