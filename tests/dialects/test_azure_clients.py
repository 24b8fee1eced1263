"""azure-core LROPoller + LROBasePolling and azure-mgmt-core ARMPolling against a real server."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.configuration import Configuration
from azure.core.exceptions import HttpResponseError
from azure.core.paging import ItemPaged
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.polling.arm_polling import ARMPolling

from tests.dialects.conftest import Server, until

ARM = "/subscriptions/{c}/providers/Longrun.Operations/locations/westus"
TIMEOUT = 30


def _body(pipeline_response: Any) -> Any:
    response = pipeline_response.http_response
    return response.json() if response.text() else None


def _send(client: PipelineClient, method: str, url: str, **kwargs: Any) -> Any:
    """Send one request through the client's pipeline (relative URLs against its base URL)."""
    pipeline = kwargs.pop("_return_pipeline_response", False)
    request = HttpRequest(method, client.format_url(url), **kwargs)
    return client.send_request(request, _return_pipeline_response=pipeline)


def _start(client: PipelineClient, url: str, body: dict[str, Any], **headers: str) -> Any:
    return _send(client, "POST", url, json=body, headers=headers, _return_pipeline_response=True)


def _poller(client: PipelineClient, c: str, op_type: str, body: dict[str, Any]) -> LROPoller[Any]:
    url = f"/azure/{c}/operation-types/{op_type}:start?api-version=2025-01-01"
    return LROPoller(client, _start(client, url, body), _body, LROBasePolling(timeout=0.1))


def _arm_poller(client: ARMPipelineClient, c: str, op_type: str, body: dict[str, Any]) -> Any:
    url = ARM.format(c=c) + f"/operationTypes/{op_type}/start?api-version=2025-01-01"
    return LROPoller(client, _start(client, url, body), _body, ARMPolling(timeout=0.1))


def _status(client: PipelineClient, c: str, op_id: str) -> str:
    response = _send(client, "GET", f"/azure/{c}/operations/{op_id}")
    return str(response.json()["status"])


@pytest.fixture(scope="module")
def client(server: Server) -> PipelineClient:
    return PipelineClient(base_url=server.url)


@pytest.fixture(scope="module")
def arm(server: Server) -> ARMPipelineClient:
    return ARMPipelineClient(base_url=server.url, config=Configuration())


def test_data_plane_success_returns_the_result(client: PipelineClient) -> None:
    poller = _poller(client, "az", "demo.sleep", {"seconds": 0.2, "steps": 2})
    monitor = poller.result(timeout=TIMEOUT)
    assert poller.status() == "Succeeded"
    assert monitor["status"] == "Succeeded"
    assert monitor["result"] == {"slept": 0.2, "steps": 2, "attempt": 1}
    assert monitor["percentComplete"] == 100.0


def test_data_plane_failure_raises_with_longrun_code(client: PipelineClient) -> None:
    poller = _poller(client, "az", "demo.hash", {"path": "/no/such/file"})
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=TIMEOUT)
    assert caught.value.error is not None
    assert caught.value.error.code == "FileNotFound"
    assert "no such file" in caught.value.error.message
    assert poller.status() == "Failed"


def test_data_plane_cancel_ends_canceled(client: PipelineClient) -> None:
    poller = _poller(client, "az", "demo.sleep", {"seconds": 30, "steps": 300})
    op_id = poller.polling_method().resource()["id"]
    until(lambda: _status(client, "az", op_id) == "Running", TIMEOUT, "Running")
    cancel = _send(client, "POST", f"/azure/az/operations/{op_id}:cancel?api-version=2025-01-01")
    assert cancel.status_code == 200
    assert cancel.json()["cancelRequested"] is True or cancel.json()["status"] == "Canceled"
    with pytest.raises(HttpResponseError):
        poller.result(timeout=TIMEOUT)
    assert poller.status() == "Canceled"


def test_data_plane_continuation_token_round_trip(client: PipelineClient) -> None:
    first = _poller(client, "az", "demo.sleep", {"seconds": 0.5, "steps": 2})
    token = first.continuation_token()
    resumed: LROPoller[Any] = LROPoller.from_continuation_token(
        LROBasePolling(timeout=0.1), token, client=client, deserialization_callback=_body
    )
    monitor = resumed.result(timeout=TIMEOUT)
    assert monitor["id"] == first.polling_method().resource()["id"]
    assert monitor["result"]["slept"] == 0.5


def _paged(client: PipelineClient, first_url: str) -> tuple[list[Any], list[str]]:
    links: list[str] = []

    def get_next(link: str | None) -> Any:
        links.append(link or first_url)
        return _send(client, "GET", link or first_url)

    def extract(response: Any) -> tuple[str | None, list[Any]]:
        body = response.json()
        return body.get("nextLink"), body["value"]

    return list(ItemPaged(get_next, extract)), links


def test_data_plane_list_across_pages(client: PipelineClient) -> None:
    ids = {
        _poller(client, "az-list", "demo.sleep", {"seconds": 0, "steps": 1})
        .polling_method()
        .resource()["id"]
        for _ in range(5)
    }
    items, links = _paged(client, "/azure/az-list/operations?maxpagesize=2")
    assert {m["id"] for m in items} == ids
    assert len(links) == 3


def test_reused_operation_id_with_another_request_is_400(client: PipelineClient) -> None:
    url = "/azure/az/operation-types/demo.sleep:start"
    assert (
        _start(client, url, {"seconds": 0}, **{"Operation-Id": "k1"}).http_response.status_code
        == 202
    )
    again = _start(client, url, {"seconds": 1}, **{"Operation-Id": "k1"}).http_response
    assert again.status_code == 400
    assert again.headers["x-ms-error-code"] == "InvalidInput"
    assert "Retry-After" not in again.headers


def test_arm_success_final_get_returns_the_result(arm: ARMPipelineClient) -> None:
    poller = _arm_poller(arm, "sub1", "demo.sleep", {"seconds": 0.2, "steps": 2})
    assert poller.result(timeout=TIMEOUT) == {"slept": 0.2, "steps": 2, "attempt": 1}
    assert poller.status() == "Succeeded"


def test_arm_failure_raises_with_longrun_code(arm: ARMPipelineClient) -> None:
    poller = _arm_poller(arm, "sub1", "demo.hash", {"path": "/no/such/file"})
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=TIMEOUT)
    assert caught.value.error is not None
    assert caught.value.error.code == "FileNotFound"
    assert "no such file" in caught.value.error.message


def test_arm_cancel_and_token_round_trip(arm: ARMPipelineClient) -> None:
    poller = _arm_poller(arm, "sub1", "demo.sleep", {"seconds": 30, "steps": 300})
    token = poller.continuation_token()
    resumed: LROPoller[Any] = LROPoller.from_continuation_token(
        ARMPolling(timeout=0.1), token, client=arm, deserialization_callback=_body
    )
    status_url = poller.polling_method()._operation.get_polling_url()
    until(
        lambda: _send(arm, "GET", status_url).json()["status"] == "InProgress",
        TIMEOUT,
        "InProgress",
    )
    cancel_url = status_url.replace("?", "/cancel?")
    assert _send(arm, "POST", cancel_url).status_code == 200
    with pytest.raises(HttpResponseError):
        resumed.result(timeout=TIMEOUT)
    assert resumed.status() == "Canceled"


def test_arm_list_across_pages(arm: ARMPipelineClient) -> None:
    ids = set()
    for _ in range(3):
        poller = _arm_poller(arm, "sub-list", "demo.sleep", {"seconds": 0, "steps": 1})
        poller.result(timeout=TIMEOUT)
        ids.add(poller.polling_method()._operation.get_polling_url().split("?")[0].rsplit("/")[-1])
    items, links = _paged(arm, ARM.format(c="sub-list") + "/operationStatuses?maxpagesize=2")
    assert {s["name"] for s in items} == ids
    assert {s["status"] for s in items} == {"Succeeded"}
    assert len(links) == 2
