"""API keys and the audit trail: the same contract on every engine."""

from __future__ import annotations

import pytest

from longrun.model import ManualClock, NotFound, new_id
from longrun.store import Store
from longrun.store.base import ApiKey, AuditRecord


def _key(clock: ManualClock, **fields: object) -> ApiKey:
    data: dict[str, object] = {
        "id": new_id(),
        "secret_hash": "ab" * 32,
        "role": "reader",
        "compartments": ("c1", "c2"),
        "name": "ci",
        "created_at": clock.now(),
    }
    data.update(fields)
    return ApiKey(**data)  # type: ignore[arg-type]


async def test_a_key_is_stored_listed_and_revoked_once(store: Store, clock: ManualClock) -> None:
    key = _key(clock)
    await store.create_key(key)
    assert await store.get_key(key.id) == key
    assert await store.get_key(new_id()) is None
    clock.advance(5)
    revoked = await store.revoke_key(key.id, clock.now())
    assert revoked.revoked_at == clock.now() and revoked.is_revoked
    clock.advance(5)
    again = await store.revoke_key(key.id, clock.now())
    assert again.revoked_at == revoked.revoked_at  # the first revocation time is kept
    assert (await store.get_key(key.id)) == revoked


async def test_keys_are_listed_oldest_first(store: Store, clock: ManualClock) -> None:
    first = _key(clock, role="admin", compartments=())
    clock.advance(1)
    second = _key(clock, compartments=("only",))
    await store.create_key(second)
    await store.create_key(first)
    assert [k.id for k in await store.list_keys()] == [first.id, second.id]
    assert (await store.list_keys())[0].compartments == ()


async def test_revoking_an_unknown_key_is_not_found(store: Store, clock: ManualClock) -> None:
    with pytest.raises(NotFound):
        await store.revoke_key(new_id(), clock.now())


async def test_audit_records_page_newest_first(store: Store, clock: ManualClock) -> None:
    records = []
    for i in range(5):
        clock.advance(0.001)
        record = AuditRecord(
            id=new_id(),
            time=clock.now(),
            caller="key:abc",
            action="cancel" if i % 2 else "submit",
            outcome="ok" if i else "Forbidden",
            status=200 if i else 403,
            target=None if i == 0 else f"op{i}",
            compartment_id="c1",
        )
        records.append(record)
        await store.record_audit(record)
    newest = await store.list_audit(limit=3)
    assert newest == records[::-1][:3]
    rest = await store.list_audit(limit=3, before_id=newest[-1].id)
    assert rest == records[::-1][3:]
