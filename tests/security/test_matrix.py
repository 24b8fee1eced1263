"""The authorization matrix: every route, every credential, own and other compartment: one exact status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.security.conftest import Secured

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROLES = ("reader", "operator", "jwt-operator", "admin")
REFUSED = ("none", "invalid", "expired", "garbage")
RANK = {"reader": 1, "operator": 2, "jwt-operator": 2, "admin": 4, "metrics": 0}
NEEDS = {"public": 0, "read": 1, "operate": 2, "admin": 4}
ARM = "/subscriptions/{c}/providers/Longrun.Operations/locations/l"
GOOGLE = "/v1/projects/{c}/locations/l"
SUBMIT = {"operationType": "test.echo", "input": {"message": "hi"}}


@dataclass(frozen=True)
class Case:
    """One route: how to call it, what it needs, what it answers."""

    method: str
    path: str  # {c}: compartment, {op}: an operation id in ``state``
    needs: str
    ok: int
    kind: str = "op"  # op | submit | list | global | public
    state: str = "accepted"  # accepted | held | done
    missing: int = 404  # what another compartment's operation answers (as a missing one)
    body: dict[str, Any] | None = field(default=None, hash=False)
    stream: bool = False


CASES = [
    Case("POST", "/v1/operations", "operate", 202, "submit", body=SUBMIT),
    Case("GET", "/v1/operations?compartmentId={c}", "read", 200, "list"),
    Case("GET", "/v1/operations/{op}", "read", 200),
    Case("GET", "/v1/operations/{op}:wait?timeout=0", "read", 200),
    Case("POST", "/v1/operations/{op}:cancel", "operate", 200),
    Case("POST", "/v1/operations/{op}:hold", "operate", 200),
    Case("POST", "/v1/operations/{op}:release", "operate", 200, state="held"),
    Case("GET", "/v1/operations/{op}/logs", "read", 200),
    Case("GET", "/v1/operations/{op}/errors", "read", 200),
    Case("GET", "/v1/operations/{op}/resources", "read", 200),
    Case("DELETE", "/v1/operations/{op}", "admin", 204, state="done"),
    Case("GET", "/v1/operations/{op}/deliveries", "read", 200),
    Case("GET", "/v1/operations/{op}/events", "read", 200, state="done", stream=True),
    Case("GET", "/v1/events?compartmentId={c}", "read", 200, "list", stream=True),
    Case("GET", "/v1/operation-types", "read", 200, "global"),
    Case("GET", "/v1/audit", "admin", 200, "global"),
    Case("GET", "/metrics", "admin", 200, "global"),
    Case("GET", "/healthz", "public", 200, "public"),
    Case("GET", "/openapi.json", "public", 200, "public"),
    Case("GET", "/", "public", 200, "public"),
    # Azure
    Case(
        "POST",
        "/azure/{c}/operation-types/test.echo:start",
        "operate",
        202,
        "submit",
        body={"message": "hi"},
    ),
    Case("GET", "/azure/{c}/operations/{op}", "read", 200),
    Case("POST", "/azure/{c}/operations/{op}:cancel", "operate", 200),
    Case("GET", "/azure/{c}/operations", "read", 200, "list"),
    Case(
        "POST",
        ARM + "/operationTypes/test.echo/start",
        "operate",
        202,
        "submit",
        body={"message": "hi"},
    ),
    Case("GET", ARM + "/operationStatuses/{op}", "read", 200),
    Case("GET", ARM + "/operationResults/{op}", "read", 202),
    Case("POST", ARM + "/operationStatuses/{op}/cancel", "operate", 200),
    Case("GET", ARM + "/operationStatuses", "read", 200, "list"),
    Case("GET", "/azure/{c}/operationStatus/{op}", "read", 200),
    Case("GET", ARM + "/operationProgress/{op}", "read", 200),
    # Google
    Case(
        "POST",
        GOOGLE + "/operationTypes/test.echo:start",
        "operate",
        200,
        "submit",
        body={"message": "hi"},
    ),
    Case("GET", GOOGLE + "/operations/{op}", "read", 200),
    Case("DELETE", GOOGLE + "/operations/{op}", "admin", 200, state="done"),
    Case("GET", GOOGLE + "/operations", "read", 200, "list"),
    Case("POST", GOOGLE + "/operations/{op}:cancel", "operate", 200),
    Case("POST", GOOGLE + "/operations/{op}:wait", "read", 200, body={"timeout": "0s"}),
    # OCI
    Case(
        "POST",
        "/20160918/operationTypes/test.echo/actions/start",
        "operate",
        202,
        "submit",
        body={"compartmentId": "{c}", "input": {"message": "hi"}},
    ),
    Case("GET", "/20160918/workRequests/{op}", "read", 200),
    Case("DELETE", "/20160918/workRequests/{op}", "admin", 202),
    Case("GET", "/20160918/workRequests/{op}/errors", "read", 200),
    Case("GET", "/20160918/workRequests/{op}/logs", "read", 200),
    Case("GET", "/20160918/workRequests?compartmentId={c}", "read", 200, "list"),
    # Cohesity
    Case(
        "POST",
        "/cohesity/{c}/operationTypes/test.echo/copyTasks",
        "operate",
        201,
        "submit",
        body={"message": "hi"},
    ),
    Case("GET", "/cohesity/{c}/copyTasks/{op}", "read", 200),
]


def expected(case: Case, credential: str, compartment: str) -> int:
    """The one status this credential must get on this route for an operation there."""
    if case.kind == "public":
        return case.ok
    if credential in REFUSED:
        return 401
    if case.path == "/metrics" and credential == "metrics":
        return 200
    if RANK[credential] < NEEDS[case.needs]:
        return 403
    if compartment == "own" or credential == "admin":
        return case.ok
    return {"submit": 403, "op": case.missing}.get(case.kind, case.ok)


async def _operation(secured: Secured, compartment: str, state: str) -> str:
    service = secured.app.state.service
    op, _ = await service.submit("test.echo", {"message": "x"}, compartment_id=compartment)
    now = service.clock.now()
    if state == "held":
        await secured.store.hold(op.id, now)
    elif state == "done":
        await secured.store.request_cancel(op.id, now)
    return str(op.id)


def _fill(value: Any, compartment: str, op_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{c}", compartment).replace("{op}", op_id)
    if isinstance(value, dict):
        return {k: _fill(v, compartment, op_id) for k, v in value.items()}
    return value


async def _call(http: httpx.AsyncClient, case: Case, path: str, body: Any) -> httpx.Response:
    if case.method == "POST" and body is None:
        body = {}
    if case.stream:
        async with http.stream(case.method, path) as response:
            return response  # the status is enough; closing ends the stream
    return await http.request(case.method, path, json=body)


CREDENTIALS = (*ROLES, "metrics", *REFUSED)

_GOOGLE_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


def error_shape_problem(path: str, response: httpx.Response) -> str | None:
    """What is wrong with an error's body for the dialect of ``path`` (None: it is right): a
    cloud's client reads a 401 or 403 the way it reads any other error of that API."""
    if case_stream_or_public(path):
        return None
    body = response.json()
    status = response.status_code
    if path.startswith("/20160918/"):  # OCI
        ok = set(body) == {"code", "message"} and "opc-request-id" in response.headers
    elif path.startswith("/cohesity/"):
        ok = set(body) == {"errorCode", "message"}
    elif path.startswith(GOOGLE.split("{")[0]):
        ok = body["error"]["code"] == status and body["error"]["status"] == _GOOGLE_STATUS[status]
    elif path.startswith(("/azure/", "/subscriptions/")):
        ok = response.headers.get("x-ms-error-code") == body["error"]["code"]
    else:
        ok = isinstance(body["error"]["code"], str) and "x-ms-error-code" not in response.headers
    return None if ok else f"{status} in the wrong shape on {path}: {body}"


def case_stream_or_public(path: str) -> bool:
    return path in ("/metrics", "/") or path.endswith("/events") or "/events?" in path


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.path}")
async def test_every_route_answers_every_credential_exactly(secured: Secured, case: Case) -> None:
    failures = []
    for credential in CREDENTIALS:
        compartments = ("own",) if case.kind in ("global", "public") else ("own", "other")
        async with secured.client(credential if credential != "none" else None) as http:
            for compartment in compartments:
                op_id = await _operation(secured, compartment, case.state)
                path = _fill(case.path, compartment, op_id)
                body = _fill(case.body, compartment, op_id)
                if case.path == "/v1/operations" and case.method == "POST":
                    body = {**SUBMIT, "compartmentId": compartment}
                response = await _call(http, case, path, body)
                want = expected(case, credential, compartment)
                if response.status_code != want:
                    failures.append(f"{credential}/{compartment}: {response.status_code} != {want}")
                elif want >= 400 and (problem := error_shape_problem(path, response)):
                    failures.append(f"{credential}/{compartment}: {problem}")
                hidden = case.kind == "list" and compartment == "other" and credential != "admin"
                if hidden and want == 200 and not case.stream:
                    assert op_id not in response.text, f"{credential} listed another's op"
    assert not failures, failures


async def test_the_matrix_covers_every_route(secured: Secured) -> None:
    paths = secured.app.openapi()["paths"]
    known = {(c.method, c.path.split("?")[0]) for c in CASES}
    missing = []
    for path, operations in paths.items():
        for method in operations:
            template = path.replace("{compartment_id}", "{c}").replace("{op_id}", "{op}")
            template = template.replace("{location}", "l").replace("{operation_type}", "test.echo")
            template = template.replace("{version}", "20160918")
            if (method.upper(), template) not in known:
                missing.append(f"{method.upper()} {path}")
    assert not missing, missing
