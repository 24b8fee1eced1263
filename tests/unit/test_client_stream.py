"""The client's event-stream logic without I/O: the incremental parser and the stream-or-poll plan."""

from __future__ import annotations

import json

import httpx
import pytest

from longrun.client._stream import EventParser, ServerEvent, StreamPlan, build_events
from longrun.model import Gone, InvalidInput, Operation, Status, Unauthorized

OP_ID = "01a0a0a0-0000-7000-8000-000000000001"


def _op(status: Status, version: int, percent: float = 0.0) -> dict[str, object]:
    return {
        "id": OP_ID,
        "operationType": "demo.sleep",
        "compartmentId": "default",
        "status": status.value,
        "version": version,
        "percentComplete": percent,
        "timeAccepted": "2024-01-01T00:00:00.000000Z",
        "lastActionTime": "2024-01-01T00:00:00.000000Z",
    }


def _frame(status: Status, version: int, percent: float = 0.0) -> str:
    data = json.dumps(_op(status, version, percent))
    return f"event: operation\nid: {OP_ID}:{version}\ndata: {data}\n\n"


def _response(
    status: int, body: bytes = b"", content_type: str = "application/json"
) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"Content-Type": content_type})


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------ parser


def test_parser_reads_events_split_anywhere_and_any_line_ending() -> None:
    stream = 'retry: 2000\r\n\r\n: keep-alive\r\nevent: operation\rid: a:1\ndata: {"x":\ndata: 1}\r\n\r\n'
    for size in (1, 2, 3, 7, len(stream)):
        parser = EventParser()
        events: list[ServerEvent] = []
        for start in range(0, len(stream), size):
            events.extend(parser.feed(stream[start : start + size]))
        assert events == [ServerEvent("operation", '{"x":\n1}', "a:1")], size
        assert parser.retry == 2.0 and parser.last_event_id == "a:1"


def test_parser_skips_comments_empty_events_and_keeps_the_last_id() -> None:
    parser = EventParser()
    assert parser.feed(": keep-alive\n\nid: x:2\n\nevent: lagging\n\n") == []
    assert parser.last_event_id == "x:2"
    assert parser.feed("data:no space\n\n") == [ServerEvent("message", "no space", "x:2")]
    assert parser.feed("id: bad\0id\nretry: soon\ndata: y\n\n") == [
        ServerEvent("message", "y", "x:2")
    ]
    assert parser.retry is None


def test_a_trailing_cr_waits_for_the_next_chunk() -> None:
    parser = EventParser()
    assert parser.feed("data: a\r") == []
    assert parser.feed("\n\r\n") == [ServerEvent("message", "a", None)]


def test_build_events_resumes_after_the_last_id() -> None:
    assert build_events(OP_ID).headers.get("Last-Event-ID") is None
    request = build_events(OP_ID, f"{OP_ID}:3")
    assert request.path == f"/v1/operations/{OP_ID}/events"
    assert request.headers["Last-Event-ID"] == f"{OP_ID}:3"
    assert request.headers["Accept"] == "text/event-stream"


# -------------------------------------------------------------------------------------------- plan


def test_plan_yields_each_state_and_stops_at_the_terminal_one() -> None:
    plan = StreamPlan(OP_ID, 10)
    assert plan.next_request() is not None
    assert plan.accepts(_response(200, content_type="text/event-stream; charset=utf-8"))
    text = _frame(Status.IN_PROGRESS, 2, 10) + _frame(Status.IN_PROGRESS, 3, 50)
    states = plan.feed("retry: 2000\n\n" + text[:50]) + plan.feed(text[50:])
    assert [(s.status, s.percent_complete) for s in states] == [
        (Status.IN_PROGRESS, 10),
        (Status.IN_PROGRESS, 50),
    ]
    assert not plan.done
    last = plan.feed(_frame(Status.SUCCEEDED, 4, 100) + _frame(Status.SUCCEEDED, 5, 100))
    assert [s.version for s in last] == [4] and plan.done
    assert isinstance(plan.last, Operation) and plan.next_request() is None


def test_plan_resumes_with_last_event_id_then_polls_after_bounded_reconnects() -> None:
    clock = _Clock()
    plan = StreamPlan(OP_ID, 10, max_reconnects=2, clock=clock)
    plan.next_request()
    plan.feed("retry: 2000\n\n" + _frame(Status.IN_PROGRESS, 2))
    plan.ended()
    assert plan.delay() == pytest.approx(0.1)
    request = plan.next_request()
    assert request is not None and request.headers["Last-Event-ID"] == f"{OP_ID}:2"
    plan.feed(_frame(Status.IN_PROGRESS, 3))  # an event resets the count
    for expected in (0.1, 0.2):
        plan.ended()
        assert plan.delay() == pytest.approx(expected) and not plan.fallback
        assert plan.next_request() is not None
    plan.ended()
    assert plan.fallback and not plan.unavailable and plan.next_request() is None


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_missing_route_means_poll_and_remember(status: int) -> None:
    plan = StreamPlan(OP_ID, 10)
    plan.next_request()
    response = _response(status, b'{"detail":"Not Found"}')
    assert not plan.accepts(response)
    plan.refused(response)
    assert plan.fallback and plan.unavailable and plan.next_request() is None


@pytest.mark.parametrize(
    ("status", "content_type"),
    [(204, "text/plain"), (429, "application/json"), (503, "application/json"), (200, "text/html")],
)
def test_no_stream_now_means_poll_but_try_again_later(status: int, content_type: str) -> None:
    plan = StreamPlan(OP_ID, 10)
    plan.next_request()
    response = _response(status, content_type=content_type)
    assert not plan.accepts(response)
    plan.refused(response)
    assert plan.fallback and not plan.unavailable


@pytest.mark.parametrize(("status", "error"), [(401, Unauthorized), (410, Gone)])
def test_refusals_that_polling_would_not_change_raise(status: int, error: type) -> None:
    plan = StreamPlan(OP_ID, 10)
    body = json.dumps({"error": {"code": error.__name__, "message": "no"}}).encode()
    with pytest.raises(error):
        plan.refused(_response(status, body))


def test_a_proxy_that_buffers_is_detected_by_silence() -> None:
    plan = StreamPlan(OP_ID, 10, idle_timeout=2)
    plan.next_request()
    assert plan.read_timeout() == 2
    plan.ended(timed_out=True)
    assert plan.fallback and plan.unavailable


def test_silence_after_bytes_is_a_dropped_connection() -> None:
    plan = StreamPlan(OP_ID, 10)
    plan.next_request()
    plan.feed("retry: 2000\n\n")
    plan.ended(timed_out=True)
    assert not plan.fallback and plan.next_request() is not None


def test_garbled_data_falls_back_to_polling() -> None:
    plan = StreamPlan(OP_ID, 10)
    plan.next_request()
    assert plan.feed("event: operation\ndata: {not json\n\n") == []
    assert plan.fallback


def test_the_bound_holds() -> None:
    clock = _Clock()
    plan = StreamPlan(OP_ID, 5, idle_timeout=45, clock=clock)
    assert plan.next_request() is not None and plan.read_timeout() == 5
    clock.now = 4.0
    plan.feed(_frame(Status.IN_PROGRESS, 2))
    assert plan.read_timeout() == pytest.approx(1.0)
    plan.ended()
    clock.now = 5.0
    assert plan.next_request() is None and plan.delay() == 0
    error = plan.expired()
    assert "IN_PROGRESS" in str(error) and error.details[0]["message"] == "IN_PROGRESS"
    with pytest.raises(InvalidInput):
        StreamPlan(OP_ID, -1)
