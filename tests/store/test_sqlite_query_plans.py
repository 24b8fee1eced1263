"""SQLite: every list filter, the claim and the reaper read through an index, never a full scan."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from longrun.model import Status
from longrun.store.base import ListQuery
from longrun.store.sqlite_conn import migrate
from longrun.store.sqlite_sql import (
    CLAIM,
    COMPARTMENT_PURGE_CANDIDATES,
    EXPIRED_LEASES,
    PURGE_CANDIDATES,
    list_sql,
)

T = datetime(2026, 1, 1, tzinfo=UTC)
QUERIES = {
    "all, newest first": ListQuery(),
    "cursor": ListQuery(after_id="0190"),
    "compartment": ListQuery(compartment_ids=["c1"]),
    "compartment + status": ListQuery(compartment_ids=["c1"], statuses=[Status.FAILED]),
    "compartment + type": ListQuery(compartment_ids=["c1"], operation_types=["t"]),
    "status only": ListQuery(statuses=[Status.IN_PROGRESS]),
    "parent": ListQuery(parent_id="p"),
    "compartment + time range": ListQuery(compartment_ids=["c1"], accepted_after=T, accepted_before=T),
    "oldest first": ListQuery(compartment_ids=["c1"], newest_first=False),
}


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = str(Path(tmp_path_factory.mktemp("plans")) / "plans.db")
    migrate(path)
    c = sqlite3.connect(path)
    c.execute("ANALYZE")
    return c


def _plan(conn: sqlite3.Connection, sql: str, params: object) -> str:
    return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def _full_scans(plan: str) -> list[str]:
    return [step for step in plan.split(" | ") if step.startswith("SCAN operations") and "INDEX" not in step]


@pytest.mark.parametrize("name", list(QUERIES))
def test_list_filters_use_an_index(conn: sqlite3.Connection, name: str) -> None:
    sql, params = list_sql(QUERIES[name])
    plan = _plan(conn, sql, params)
    assert not _full_scans(plan), plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan or "time" in name, plan


def test_claim_reaper_and_purge_use_indexes(conn: sqlite3.Connection) -> None:
    claim = CLAIM.format(types=":t0")
    params = {"t0": "x", "worker_id": "w", "lease_id": "l", "lease_expires": 0, "now": 0, "limit": 1}
    compartment = {"compartment_id": "c1", "limit": 1}
    for sql, p in (
        (claim, params),
        (EXPIRED_LEASES, {"now": 0}),
        (PURGE_CANDIDATES, {"cutoff": 0, "limit": 1}),
        (COMPARTMENT_PURGE_CANDIDATES, compartment),
    ):
        plan = _plan(conn, sql, p)
        assert not _full_scans(plan), plan


def test_the_change_feed_reads_through_the_last_action_index(conn: sqlite3.Connection) -> None:
    from longrun.store.sqlite_feed import _VERSIONS_SINCE
    from longrun.store.sqlite_sql import CHANGED_SINCE

    for sql in (CHANGED_SINCE, _VERSIONS_SINCE):
        plan = _plan(conn, sql, {"since": 0, "limit": 500})
        assert "ix_operations_last_action" in plan and "TEMP B-TREE" not in plan, plan
