"""Store contract: list filters, both orders, cursor pages that stay right while rows arrive."""

from __future__ import annotations

from longrun.model import ManualClock, Status
from longrun.store import Store
from longrun.store.base import ListQuery
from tests.store.conftest import make_op


async def test_filters_by_compartment_status_type_and_time(store: Store, clock: ManualClock) -> None:
    a = (await store.submit(make_op(clock, compartment_id="a"))).operation
    clock.advance(10)
    b = (await store.submit(make_op(clock, compartment_id="b", operation_type="other"))).operation
    await store.request_cancel(b.id, clock.now())
    c = (await store.submit(make_op(clock, compartment_id="a", parent_id=a.id))).operation

    async def ids(**kw: object) -> list[str]:
        return [o.id for o in await store.list(ListQuery(**kw))]  # type: ignore[arg-type]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(compartment_ids=["a"]) == [c.id, a.id]
    assert await ids(compartment_ids=[]) == []
    assert await ids(statuses=[Status.CANCELED]) == [b.id]
    assert await ids(operation_types=["other"]) == [b.id]
    assert await ids(parent_id=a.id) == [c.id]
    assert await ids(accepted_after=clock.now()) == [c.id, b.id]
    assert await ids(accepted_before=clock.now()) == [a.id]
    assert await ids(newest_first=False, limit=2) == [a.id, b.id]
    parent = next(o for o in await store.list(ListQuery(compartment_ids=["a"])) if o.id == a.id)
    assert parent.children == [c.id]


async def test_cursor_pages_do_not_skip_or_repeat_while_rows_arrive(store: Store, clock: ManualClock) -> None:
    existing = [(await store.submit(make_op(clock))).operation.id for _ in range(25)]
    for newest_first in (True, False):
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list(ListQuery(after_id=cursor, limit=4, newest_first=newest_first))
            await store.submit(make_op(clock))  # a new row arrives between two page fetches
            seen.extend(o.id for o in page)
            if len(page) < 4:
                break
            cursor = page[-1].id
        mine = [i for i in seen if i in existing]
        assert sorted(mine) == sorted(existing)
        assert len(seen) == len(set(seen))
        assert mine == (sorted(existing, reverse=True) if newest_first else sorted(existing))
