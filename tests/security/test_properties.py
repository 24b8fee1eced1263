"""Property-based tests of input validation: the JSON shape limits and submit through the API."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():  # httpx is what longrun depends on; httpx2 is not needed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from longrun.api import create_app
from longrun.model import InvalidInput
from longrun.model.limits import (
    MAX_JSON_DEPTH,
    MAX_JSON_ITEMS,
    MAX_STRING_LENGTH,
    check_json_shape,
)
from longrun.store.base import ListQuery
from tests.integration.conftest import make_test_app, settings_for

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shape(value: Any) -> tuple[int, int, int]:
    """(containers on the deepest path, values in all, longest string or key): the reference."""
    if isinstance(value, str):
        return 0, 1, len(value)
    if isinstance(value, dict | list):
        pairs = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        depth, count, longest = 0, 1, 0
        for key, child in pairs:
            d, c, s = _shape(child)
            depth, count = max(depth, d), count + c
            longest = max(longest, s, len(key) if isinstance(key, str) else 0)
        return depth + 1, count, longest
    return 0, 1, 0


@FAST
@given(value=JSON, depth=st.integers(1, 4), items=st.integers(1, 25), string=st.integers(0, 8))
def test_the_shape_check_refuses_exactly_what_passes_a_limit(
    value: Any, depth: int, items: int, string: int
) -> None:
    nesting, count, longest = _shape(value)
    over = nesting > depth or count > items or longest > string
    try:
        check_json_shape(value, max_depth=depth, max_items=items, max_string=string)
    except InvalidInput as exc:
        assert over, f"refused within the limits: {exc}"
        assert exc.target == "input"
    else:
        assert not over, (nesting, count, longest)


def test_the_default_limits_at_their_edges() -> None:
    def nest(levels: int) -> Any:
        value: Any = {}
        for _ in range(levels - 1):
            value = {"a": value}
        return value

    check_json_shape(nest(MAX_JSON_DEPTH))
    check_json_shape({"s": "x" * MAX_STRING_LENGTH, "k" * MAX_STRING_LENGTH: 1})
    check_json_shape(list(range(MAX_JSON_ITEMS - 1)))  # the list itself is a value
    for too_much in (
        nest(MAX_JSON_DEPTH + 1),
        {"s": "x" * (MAX_STRING_LENGTH + 1)},
        {"k" * (MAX_STRING_LENGTH + 1): 1},
        list(range(MAX_JSON_ITEMS)),
    ):
        with pytest.raises(InvalidInput):
            check_json_shape(too_much)


# through the API: a real app on a real SQLite file ------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(tmp_path_factory.mktemp("properties"), max_body_bytes=1 << 20)
    with TestClient(create_app(settings, app=make_test_app())) as http:
        yield http


def _count(client: TestClient) -> int:
    store = client.app.state.store  # type: ignore[attr-defined]
    assert client.portal is not None
    return len(client.portal.call(store.list, ListQuery(limit=100_000)))


def _submit(client: TestClient, operation_type: str, value: Any) -> Any:
    body = {"operationType": operation_type, "input": value}
    return client.post("/v1/operations", content=json.dumps(body), headers=_JSON)


_JSON = {"Content-Type": "application/json"}


def _check_answer(client: TestClient, response: Any, before: int) -> None:
    assert response.status_code in (202, 400), response.text
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] == "InvalidInput"
        assert error["target"] == "input" or error["target"].startswith("input")
        assert _count(client) == before, "a refused submit wrote something"
    else:
        assert _count(client) == before + 1


@FAST
@given(value=JSON)
def test_random_input_of_a_free_type_is_accepted_or_refused_cleanly(
    client: TestClient, value: Any
) -> None:
    before = _count(client)
    response = _submit(client, "test.free", value)
    _check_answer(client, response, before)
    accepted = response.status_code == 202
    assert accepted == (isinstance(value, dict) or value is None), response.text
    if accepted and value is not None:
        assert response.json()["input"] == value  # stored exactly as sent


@FAST
@given(
    value=st.dictionaries(
        st.sampled_from(["message", "count", "other"]), SCALARS | JSON, max_size=3
    )
)
def test_random_input_of_a_typed_type_is_validated_or_refused_cleanly(
    client: TestClient, value: Any
) -> None:
    before = _count(client)
    response = _submit(client, "test.echo", value)
    _check_answer(client, response, before)
    if response.status_code == 202:
        stored = response.json()["input"]
        assert isinstance(stored["message"], str) and stored["message"]
        assert 0 <= stored["count"] <= 10


@settings(max_examples=25, deadline=None)
@given(
    extra=st.sampled_from(["depth", "string", "items"]),
    operation_type=st.sampled_from(["test.free", "test.echo"]),
)
def test_inputs_past_a_limit_answer_400_and_write_nothing(
    client: TestClient, extra: str, operation_type: str
) -> None:
    value: Any = {"message": "hi"}
    if extra == "depth":
        for _ in range(MAX_JSON_DEPTH):
            value = {"message": "hi", "nested": value}
    elif extra == "string":
        value["other"] = "x" * (MAX_STRING_LENGTH + 1)
    else:
        value["other"] = [0] * MAX_JSON_ITEMS
    before = _count(client)
    response = _submit(client, operation_type, value)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidInput"
    assert _count(client) == before
