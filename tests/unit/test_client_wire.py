"""The client's no-I/O modules: request building, reply parsing, error mapping and poll plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from longrun.client import _poll as poll
from longrun.client import _replies as replies
from longrun.client import _wire as wire
from longrun.model import (
    Gone,
    IllegalTransition,
    InternalError,
    InvalidInput,
    LogEntry,
    LongrunError,
    NotFound,
    Operation,
    OperationError,
    StoreUnavailable,
    WaitTimeout,
    new_id,
)
from longrun.model.status import Status


def make_op(status: Status = Status.IN_PROGRESS, **kw: Any) -> Operation:
    now = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": new_id(),
        "operation_type": "demo.sleep",
        "compartment_id": "default",
        "status": status,
        "time_accepted": now,
        "last_action_time": now,
    }
    fields.update(kw)
    return Operation(**fields)


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------ requests


class HashIn(BaseModel):
    path: str
    chunk_size: int = 4096


def test_submit_sends_only_given_fields_in_camel_case() -> None:
    request = wire.build_submit("demo.hash", {"path": "/x"})
    assert (request.method, request.path) == ("POST", "/v1/operations")
    assert request.json == {"operationType": "demo.hash", "input": {"path": "/x"}}
    assert request.headers == {}


def test_submit_carries_every_option_and_the_idempotency_header() -> None:
    when = datetime(2030, 5, 6, 7, 8, 9, 10, tzinfo=timezone(timedelta(hours=2)))
    request = wire.build_submit(
        "demo.hash",
        HashIn(path="/x"),
        compartment_id="team-a",
        idempotency_key="k-1",
        not_before=when,
        deadline=when + timedelta(hours=1),
        max_attempts=3,
        parent_id="p1",
    )
    assert request.json == {
        "operationType": "demo.hash",
        "input": {"path": "/x", "chunk_size": 4096},
        "compartmentId": "team-a",
        "notBefore": "2030-05-06T05:08:09.000010Z",
        "deadline": "2030-05-06T06:08:09.000010Z",
        "maxAttempts": 3,
        "parentId": "p1",
    }
    assert request.headers == {"Idempotency-Key": "k-1"}


def test_naive_times_are_taken_as_utc() -> None:
    assert wire.format_time(datetime(2030, 1, 1)) == "2030-01-01T00:00:00.000000Z"


def test_operation_paths_are_quoted_and_ids_required() -> None:
    assert wire.build_get("a/b").path == "/v1/operations/a%2Fb"
    assert wire.build_cancel("x").path == "/v1/operations/x:cancel"
    assert wire.build_release("x").path == "/v1/operations/x:release"
    assert wire.build_delete("x").method == "DELETE"
    with pytest.raises(InvalidInput):
        wire.build_get("")


def test_hold_sends_the_reason_only_when_given() -> None:
    assert wire.build_hold("x").json is None
    assert wire.build_hold("x", "maintenance").json == {"reason": "maintenance"}


def test_wait_clamps_the_long_poll_to_the_contract() -> None:
    long = wire.build_wait("x", 500)
    assert long.path == "/v1/operations/x:wait"
    assert long.params == [("timeout", "60")]
    assert long.long_poll == 60
    assert wire.build_wait("x", -3).params == [("timeout", "0")]
    assert wire.build_wait("x", 2.5).params == [("timeout", "2.5")]


def test_list_repeats_filters_and_normalises_statuses() -> None:
    request = wire.build_list(
        compartment_id=["a", "b"],
        status=[Status.FAILED, "succeeded"],
        operation_type="demo.hash",
        accepted_after=datetime(2030, 1, 1, tzinfo=UTC),
        order="asc",
        limit=10,
        page="tok",
    )
    assert request.params == [
        ("compartmentId", "a"),
        ("compartmentId", "b"),
        ("status", "FAILED"),
        ("status", "SUCCEEDED"),
        ("operationType", "demo.hash"),
        ("acceptedAfter", "2030-01-01T00:00:00.000000Z"),
        ("order", "asc"),
        ("limit", "10"),
        ("page", "tok"),
    ]
    assert wire.build_list().params == []


def test_subresources_page_and_reject_unknown_kinds() -> None:
    request = wire.build_subresource("x", "logs", limit=5, page="p")
    assert request.path == "/v1/operations/x/logs"
    assert request.params == [("limit", "5"), ("page", "p")]
    with pytest.raises(InvalidInput):
        wire.build_subresource("x", "secrets")


def test_long_polls_get_a_longer_read_timeout() -> None:
    assert wire.timeout_for(wire.build_get("x"), 5).read == 5
    assert wire.timeout_for(wire.build_wait("x", 30), 5).read == 35
    assert wire.timeout_for(wire.build_wait("x", 30), None).read is None


# ------------------------------------------------------------------------------------- replies


def _error_classes() -> list[type[LongrunError]]:
    found: list[type[LongrunError]] = []
    stack: list[type[LongrunError]] = [LongrunError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls is not OperationError and cls.__module__ == "longrun.model.errors":
            found.append(cls)
    return found


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_comes_back_as_itself(cls: type[LongrunError]) -> None:
    sent = cls("it broke", target="input.path", details=[{"code": "X", "message": "y"}])
    got = replies.error_from_response(reply(cls.http_status, sent.to_body()))
    assert type(got) is cls
    assert (got.code, got.message, got.target, got.details) == (
        sent.code,
        "it broke",
        "input.path",
        [{"code": "X", "message": "y"}],
    )


def test_unknown_codes_keep_their_code_as_an_operation_error() -> None:
    body = OperationError("FileNotFound", "no such file", target="input.path").to_body()
    got = replies.error_from_response(reply(500, body))
    assert isinstance(got, OperationError)
    assert (got.code, got.message, got.target) == ("FileNotFound", "no such file", "input.path")
    other = replies.error_from_response(
        reply(418, {"error": {"code": "Teapot", "message": "short"}})
    )
    assert isinstance(other, OperationError) and other.code == "Teapot"


def test_replies_not_in_our_shape_map_by_http_status() -> None:
    assert type(replies.error_from_response(reply(404, "<html>nope</html>"))) is NotFound
    assert type(replies.error_from_response(reply(503, {"detail": "down"}))) is StoreUnavailable
    bad_gateway = replies.error_from_response(reply(502, "upstream died"))
    assert type(bad_gateway) is InternalError
    assert "502" in bad_gateway.message and "upstream died" in bad_gateway.message


def test_raise_for_error_passes_success_and_raises_the_class() -> None:
    replies.raise_for_error(reply(204))
    with pytest.raises(Gone):
        replies.raise_for_error(reply(410, Gone().to_body()))


def test_retry_after_reads_seconds_and_dates() -> None:
    assert replies.retry_after(reply(200, {}, {"Retry-After": "7"})) == 7
    assert replies.retry_after(reply(200, {})) is None
    assert replies.retry_after(reply(200, {}, {"Retry-After": "soon"})) is None
    later = datetime.now(UTC) + timedelta(seconds=120)
    from_date = replies.retry_after(
        reply(200, {}, {"Retry-After": format_datetime(later, usegmt=True)})
    )
    assert from_date is not None and 100 < from_date <= 120
    past = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert replies.retry_after(reply(200, {}, {"Retry-After": past})) == 0


def test_operations_parse_from_the_wire_and_errors_raise() -> None:
    op = make_op(percent_complete=12.5)
    assert replies.parse_operation(reply(200, op.to_dict())) == op
    with pytest.raises(IllegalTransition):
        replies.parse_operation(reply(409, IllegalTransition("no").to_body()))
    with pytest.raises(InternalError):
        replies.parse_operation(reply(200, [1, 2]))
    with pytest.raises(InternalError):
        replies.parse_operation(reply(200, {"id": "x"}))


def test_pages_parse_items_and_the_next_token() -> None:
    ops = [make_op(), make_op()]
    page = replies.parse_page(
        reply(200, {"items": [o.to_dict() for o in ops], "nextPage": "t2"}), Operation.from_dict
    )
    assert page.items == ops and page.next_page == "t2"
    last = replies.parse_page(reply(200, {"items": [], "nextPage": ""}), Operation.from_dict)
    assert last.items == [] and last.next_page is None
    logs = replies.parse_page(
        reply(200, {"items": [{"timestamp": "2030-01-01T00:00:00Z", "message": "hi"}]}),
        replies.ITEM_MODELS["logs"],
    )
    assert isinstance(logs.items[0], LogEntry) and logs.items[0].message == "hi"
    with pytest.raises(InternalError):
        replies.parse_page(reply(200, {"nextPage": None}), Operation.from_dict)


def test_operation_types_parse() -> None:
    body = {
        "items": [
            {
                "name": "demo.hash",
                "description": "Hash",
                "inputSchema": {"type": "object"},
                "maxAttempts": 2,
                "timeout": None,
            },
            {"name": "x.y", "timeout": 30},
        ]
    }
    types = replies.parse_operation_types(reply(200, body))
    assert [t.name for t in types] == ["demo.hash", "x.y"]
    assert types[0].max_attempts == 2 and types[0].input_schema == {"type": "object"}
    assert types[1].timeout == 30.0 and types[1].max_attempts == 1
    assert types[0].to_dict()["inputSchema"] == {"type": "object"}


def test_follow_stops_on_the_last_page_and_refuses_a_loop() -> None:
    assert poll.follow(None, wire.Page([], "a")) == "a"
    assert poll.follow("a", wire.Page([], None)) is None
    with pytest.raises(InternalError):
        poll.follow("a", wire.Page([], "a"))


def test_state_changed() -> None:
    op = make_op()
    assert poll.state_changed(None, op)
    assert not poll.state_changed(op, op.model_copy())
    assert poll.state_changed(op, op.model_copy(update={"percent_complete": 3.0}))
    assert poll.state_changed(op, op.model_copy(update={"status": Status.SUCCEEDED}))


# --------------------------------------------------------------------------------------- polls


def test_wait_long_polls_and_returns_a_terminal_state() -> None:
    clock = Clock()
    plan = poll.WaitPlan("x", 100, clock=clock)
    request = plan.next_request()
    assert request is not None and request.path.endswith(":wait")
    assert request.params == [("timeout", "60")]
    done = make_op(Status.SUCCEEDED)
    assert plan.handle(reply(200, done.to_dict())) == done
    assert plan.delay() == 0


def test_a_held_long_poll_is_repeated_at_once_a_quick_one_honours_retry_after() -> None:
    clock = Clock()
    plan = poll.WaitPlan("x", 100, clock=clock)
    plan.next_request()
    clock.now += 60
    running = make_op().to_dict()
    assert plan.handle(reply(200, running, {"Retry-After": "5"})) is not None
    assert plan.delay() == 0
    request = plan.next_request()
    assert request is not None and request.params == [("timeout", "40")]
    clock.now += 1
    plan.handle(reply(200, running, {"Retry-After": "5"}))
    assert plan.delay() == 5


def test_a_server_without_wait_falls_back_to_get_and_a_missing_operation_raises() -> None:
    plan = poll.WaitPlan("x", 10, clock=Clock())
    plan.next_request()
    assert plan.handle(reply(404, NotFound().to_body())) is None
    assert not plan.long_poll
    request = plan.next_request()
    assert request is not None and request.path == "/v1/operations/x"
    with pytest.raises(NotFound):
        plan.handle(reply(404, NotFound().to_body()))


def test_get_polls_honour_retry_after_within_the_bound_then_time_out() -> None:
    clock = Clock()
    plan = poll.WaitPlan("x", 3, long_poll=False, clock=clock)
    assert plan.next_request() == wire.build_get("x")
    plan.handle(reply(200, make_op().to_dict(), {"Retry-After": "10"}))
    assert plan.delay() == 3  # never sleeps past the bound
    clock.now += 3
    assert plan.next_request() is None
    error = plan.expired()
    assert isinstance(error, WaitTimeout)
    assert error.details == [{"code": "CurrentStatus", "message": "IN_PROGRESS"}]


def test_without_retry_after_the_poll_interval_applies() -> None:
    plan = poll.WaitPlan("x", 30, long_poll=False, poll_interval=2, clock=Clock())
    plan.next_request()
    plan.handle(reply(200, make_op().to_dict()))
    assert plan.delay() == 2
    watch = poll.WaitPlan(
        "x", 30, long_poll=False, poll_interval=0.5, honour_retry_after=False, clock=Clock()
    )
    watch.next_request()
    watch.handle(reply(200, make_op().to_dict(), {"Retry-After": "9"}))
    assert watch.delay() == 0.5


def test_transient_replies_are_retried_after_their_retry_after() -> None:
    plan = poll.WaitPlan("x", 30, long_poll=False, clock=Clock())
    plan.next_request()
    assert plan.handle(reply(503, StoreUnavailable().to_body(), {"Retry-After": "4"})) is None
    assert plan.delay() == 4
    assert plan.next_request() is not None


def test_a_zero_timeout_asks_once() -> None:
    plan = poll.WaitPlan("x", 0, clock=Clock())
    request = plan.next_request()
    assert request is not None and request.params == [("timeout", "0")]
    plan.handle(reply(200, make_op().to_dict()))
    assert plan.next_request() is None
    assert "unknown" not in plan.expired().message


def test_a_negative_timeout_is_refused() -> None:
    with pytest.raises(InvalidInput):
        poll.WaitPlan("x", -1)
