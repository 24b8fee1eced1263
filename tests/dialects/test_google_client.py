"""google-api-core's operations client and ``operation.from_gapic`` against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from google.api_core import exceptions, operation, operations_v1
from google.api_core.client_options import ClientOptions
from google.api_core.future.polling import DEFAULT_POLLING
from google.auth.credentials import AnonymousCredentials
from google.longrunning import operations_pb2
from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2

from tests.dialects.conftest import Server, until

POLLING = DEFAULT_POLLING.with_delay(initial=0.05, maximum=0.2, multiplier=1.5)
TIMEOUT = 30


@pytest.fixture(scope="module")
def ops(server: Server) -> operations_v1.AbstractOperationsClient:
    return operations_v1.AbstractOperationsClient(
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=server.url),
    )


def _start(server: Server, parent: str, op_type: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{server.url}/v1/{parent}/operationTypes/{op_type}:start", json=body)
    assert response.status_code == 200, response.text
    return json_format.ParseDict(response.json(), operations_pb2.Operation())


def _future(server: Server, ops: Any, parent: str, op_type: str, body: dict[str, Any]) -> Any:
    return operation.from_gapic(
        _start(server, parent, op_type, body),
        ops,
        struct_pb2.Struct,
        metadata_type=struct_pb2.Struct,
        polling=POLLING,
    )


def test_success_returns_the_response(server: Server, ops: Any) -> None:
    fut = _future(
        server, ops, "projects/g1/locations/us", "demo.sleep", {"seconds": 0.2, "steps": 2}
    )
    result = fut.result(timeout=TIMEOUT)
    assert json_format.MessageToDict(result) == {"slept": 0.2, "steps": 2, "attempt": 1}
    metadata = json_format.MessageToDict(fut.metadata)
    assert metadata["state"] == "SUCCEEDED"
    assert metadata["progressPercent"] == 100
    assert metadata["operationType"] == "demo.sleep"
    assert fut.operation.name.startswith("projects/g1/locations/us/operations/")


def test_failure_raises_with_longrun_code_and_message(server: Server, ops: Any) -> None:
    fut = _future(server, ops, "projects/g1/locations/us", "demo.hash", {"path": "/no/such/file"})
    with pytest.raises(exceptions.NotFound) as caught:
        fut.result(timeout=TIMEOUT)
    assert caught.value.message == "no such file: /no/such/file"
    info = error_details_pb2.ErrorInfo()
    assert caught.value.errors[0].details[0].Unpack(info)
    assert info.reason == "FileNotFound"
    assert info.domain == "longrun"
    assert info.metadata["target"] == "input.path"


def test_cancel_ends_done_with_cancelled(server: Server, ops: Any) -> None:
    fut = _future(
        server, ops, "projects/g1/locations/us", "demo.sleep", {"seconds": 30, "steps": 300}
    )
    until(
        lambda: (
            json_format.MessageToDict(ops.get_operation(fut.operation.name).metadata)["value"][
                "state"
            ]
            == "RUNNING"
        ),
        TIMEOUT,
        "RUNNING",
    )
    assert fut.cancel() is True
    with pytest.raises(exceptions.Cancelled):
        fut.result(timeout=TIMEOUT)
    assert fut.cancelled()
    assert fut.operation.error.code == 1


def test_list_across_pages_with_a_filter(server: Server, ops: Any) -> None:
    parent = "projects/g-list/locations/eu"
    names = set()
    for _ in range(5):
        fut = _future(server, ops, parent, "demo.sleep", {"seconds": 0, "steps": 1})
        fut.result(timeout=TIMEOUT)
        names.add(fut.operation.name)
    pager = ops.list_operations(name=parent, filter_="done = true", page_size=2)
    pages = list(pager.pages)
    assert len(pages) == 3
    assert {op.name for page in pages for op in page.operations} == names
    running = list(ops.list_operations(name=parent, filter_="done=false"))
    assert running == []


def test_unknown_and_deleted_operations_are_not_found(server: Server, ops: Any) -> None:
    with pytest.raises(exceptions.NotFound):
        ops.get_operation(
            "projects/g1/locations/us/operations/01000000-0000-7000-8000-000000000000"
        )
    fut = _future(server, ops, "projects/g1/locations/us", "demo.sleep", {"seconds": 0, "steps": 1})
    fut.result(timeout=TIMEOUT)
    ops.delete_operation(fut.operation.name)
    with pytest.raises(exceptions.NotFound):
        ops.get_operation(fut.operation.name)


def test_wait_returns_the_operation_once_done(server: Server) -> None:
    op = _start(server, "projects/g1/locations/us", "demo.sleep", {"seconds": 0.2, "steps": 2})
    response = httpx.post(f"{server.url}/v1/{op.name}:wait", json={"timeout": "10s"}, timeout=15)
    waited = json_format.ParseDict(response.json(), operations_pb2.Operation())
    assert waited.done
    assert waited.HasField("response")
