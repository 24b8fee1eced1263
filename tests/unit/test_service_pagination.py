"""Service.list pages and the page tokens behind them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from longrun.engine.registry import App
from longrun.model import InvalidInput, ManualClock
from longrun.pagination import (
    check_limit,
    decode_cursor,
    decode_offset,
    encode_cursor,
    encode_offset,
    filters_hash,
)
from longrun.service import Service
from longrun.store import Store, open_store

ID = "01900000-0000-7000-8000-000000000000"


def test_tokens_round_trip_and_are_opaque() -> None:
    digest = filters_hash({"a": 1})
    token = encode_cursor(ID, digest)
    assert "=" not in token and "/" not in token and "+" not in token
    assert decode_cursor(token, digest) == ID
    assert decode_offset(encode_offset(40, digest), digest) == 40


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"c": "not-an-id", "f": "x"}').decode(),
        "x" * 1000,
    ],
)
def test_foreign_tokens_are_invalid_page(token: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_cursor(token, "x")
    assert info.value.target == "page"


def test_a_token_is_bound_to_its_filters() -> None:
    token = encode_cursor(ID, filters_hash({"a": 1}))
    with pytest.raises(InvalidInput):
        decode_cursor(token, filters_hash({"a": 2}))
    with pytest.raises(InvalidInput):
        decode_offset(encode_offset(-1, "d"), "d")


@pytest.mark.parametrize("limit", [0, -1, 1001, True])
def test_limits_out_of_range(limit: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        check_limit(limit)
    assert info.value.target == "limit"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    app = App()

    @app.operation("t.any")
    def anything(ctx: Any, data: Any) -> None:
        """Anything."""

    store: Store = open_store(f"sqlite:///{tmp_path}/pages.db")
    await store.open()
    try:
        yield Service(store, app, clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    finally:
        await store.close()


async def test_list_pages_fetch_one_more_to_know_the_end(service: Service) -> None:
    ids = [(await service.submit("t.any", {}))[0].id for _ in range(5)]
    first = await service.list(limit=5)
    assert [op.id for op in first.items] == ids[::-1]
    assert first.next_page is None
    second = await service.list(limit=2, order="asc")
    assert [op.id for op in second.items] == ids[:2] and second.next_page
    third = await service.list(limit=2, order="asc", page_token=second.next_page)
    assert [op.id for op in third.items] == ids[2:4]
    with pytest.raises(InvalidInput):
        await service.list(limit=2, order="desc", page_token=second.next_page)


async def test_list_rejects_bad_filters(service: Service) -> None:
    with pytest.raises(InvalidInput) as info:
        await service.list(statuses=["DONE"])
    assert info.value.target == "status"
    with pytest.raises(InvalidInput) as info:
        await service.list(order="up")
    assert info.value.target == "order"
    with pytest.raises(InvalidInput) as info:
        await service.list(accepted_after=datetime(2026, 1, 1))
    assert info.value.target == "acceptedAfter"


async def test_entries_pages(service: Service) -> None:
    op, _ = await service.submit("t.any", {})
    page = await service.logs(op.id, 10, None)
    assert page.items == [] and page.next_page is None
    with pytest.raises(InvalidInput):
        await service.errors(op.id, 10, encode_offset(0, filters_hash({"k": "logs", "id": op.id})))
