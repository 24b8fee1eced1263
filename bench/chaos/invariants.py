"""The promises, checked at the end of a chaos run from the clients' records, the handlers' run
records and the store's final state; each check gives a figure and a list of violations."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from longrun.model import Operation, Status, utcnow
from longrun.store.base import ListQuery, Store

__all__ = ["Report", "check", "read_lines"]

TERMINAL = {
    Status.SUCCEEDED,
    Status.SUCCEEDED_WITH_WARNINGS,
    Status.FAILED,
    Status.CANCELED,
    Status.MISSED,
}
_LOG = re.compile(r"^run=(\w+) seq=(\d+)$")


@dataclass
class Report:
    """Figures (name -> number) and violations (kind -> examples)."""

    figures: dict[str, Any] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def fail(self, kind: str, detail: str) -> None:
        self.violations[kind].append(detail)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.violations.values())


def read_lines(folder: Path, pattern: str) -> list[dict[str, Any]]:
    """Every JSON line of the files matching ``pattern``; a torn last line (SIGKILL) is skipped."""
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob(pattern)):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


async def all_operations(store: Store) -> list[Operation]:
    found: list[Operation] = []
    after: str | None = None
    while True:
        page = await store.list(ListQuery(after_id=after, newest_first=False, limit=500))
        found.extend(page)
        if len(page) < 500:
            return found
        after = page[-1].id


async def check(
    store: Store,
    clients: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    expiry: dict[str, datetime] | None = None,
) -> Report:
    """Run every check; the store must be open.

    ``expiry`` (soak with tombstone expiry): for each id confirmed settled during the run, the
    moment from which its tombstone may have expired. A missing id counts as expired only if it is
    there and that moment has passed; any other missing id is lost.
    """
    report = Report()
    accepted = [row for row in clients if row["ev"] == "accepted"]
    for row in clients:
        if row["ev"] == "violation":
            report.fail(row["kind"], json.dumps(row))
    ops = {op.id: op for op in await all_operations(store)}
    wanted = sorted({row["op"] for row in accepted})
    final: dict[str, Operation] = {}
    purged = expired = 0
    now = utcnow()
    for op_id in wanted:
        op = ops.get(op_id) or await store.get(op_id)
        if op is not None:
            final[op_id] = op
        elif await store.get_tombstone(op_id) is not None:
            purged += 1
        elif expiry is not None and op_id in expiry and expiry[op_id] <= now:
            expired += 1
        else:
            why = "never seen settled" if expiry is None or op_id not in expiry else "too early"
            report.fail("lost", f"{op_id}: a client got a 2xx for it; no trace ({why})")
    report.figures.update(
        submitted=len(wanted),
        in_store=len(ops),
        purged_tombstones=purged,
        **({"expired_after_purge": expired} if expiry is not None else {}),
        lost=len(report.violations.get("lost", [])),
        submit_replays=len(accepted) - len({row["key"] for row in accepted}),
    )
    _idempotency(report, accepted, ops.values())
    statuses = Counter(op.status.value for op in final.values())
    report.figures["final_status"] = dict(sorted(statuses.items()))
    for op in final.values():
        _consistent(report, op)
    _exclusive(report, final, runs)
    return report


def _idempotency(report: Report, accepted: list[dict[str, Any]], ops: Any) -> None:
    by_key: dict[str, set[str]] = defaultdict(set)
    for row in accepted:
        by_key[row["key"]].add(row["op"])
    for key, ids in by_key.items():
        if len(ids) > 1:
            report.fail("key_two_operations", f"client key {key}: {sorted(ids)}")
    stored: dict[tuple[str, str], list[str]] = defaultdict(list)
    for op in ops:
        if op.idempotency_key:
            stored[(op.compartment_id, op.idempotency_key)].append(op.id)
    for stored_key, op_ids in stored.items():
        if len(op_ids) > 1:
            report.fail("key_two_operations", f"stored key {stored_key}: {sorted(op_ids)}")
    report.figures["idempotency_keys"] = len(by_key)


def _consistent(report: Report, op: Operation) -> None:  # noqa: C901 - one check per promise
    def bad(why: str) -> None:
        report.fail("inconsistent", f"{op.id} {op.status.value}: {why}")

    if op.status not in TERMINAL and op.status is not Status.ON_HOLD:
        report.fail("not_settled", f"{op.id} is {op.status.value} after the settle bound")
    if not 0 <= op.percent_complete <= 100:
        bad(f"percent {op.percent_complete}")
    if op.time_started is not None and op.time_started < op.time_accepted:
        bad("started before accepted")
    if op.status in TERMINAL:
        if op.time_finished is None:
            bad("terminal without time_finished")
        elif op.time_finished < (op.time_started or op.time_accepted):
            bad("finished before started")
    if op.status is Status.FAILED and not op.errors:
        bad("FAILED without errors")
    if op.status is Status.SUCCEEDED and op.percent_complete != 100:
        bad(f"SUCCEEDED at {op.percent_complete}%")
    if op.attempt > op.max_attempts:
        bad(f"attempt {op.attempt} of {op.max_attempts}")
    if op.status is Status.SUCCEEDED and not (
        isinstance(op.result, dict) and op.result.get("attempt") == op.attempt
    ):
        bad(f"result {op.result!r} is not of attempt {op.attempt}")


def _exclusive(report: Report, final: dict[str, Operation], runs: list[dict[str, Any]]) -> None:
    """A write made after a later run of the same operation started must never be visible: the
    later run's claim took the lease, so fencing had to refuse it."""
    starts: dict[str, list[tuple[float, str]]] = defaultdict(list)
    steps: dict[tuple[str, int], float] = {}
    last_seen: dict[str, float] = {}
    for row in runs:
        if row["ev"] == "start":
            starts[row["op"]].append((row["t"], row["run"]))
        elif row["ev"] == "step":
            steps[(row["run"], row["seq"])] = row["t"]
        last_seen[row["run"]] = max(last_seen.get(row["run"], 0.0), row["t"])
    overlaps = visible = 0
    for op_id, op in final.items():
        order = sorted(starts.get(op_id, []))
        overlaps += sum(
            1 for (t1, r1), (t2, _) in itertools.pairwise(order) if last_seen.get(r1, t1) > t2
        )  # two at once: allowed only if fenced
        visible += _visible_writes(report, op, order, steps)
        last = order[-1][1] if order else None
        if (
            op.status is Status.SUCCEEDED
            and isinstance(op.result, dict)
            and last is not None
            and op.result.get("run") != last
        ):
            report.fail(
                "stale_result",
                f"{op_id}: result of run {op.result.get('run')}, the last run was {last}",
            )
    events = Counter(row["ev"] for row in runs)
    report.figures.update(
        handler_runs=events["start"],
        handler_exits=events["exit"],
        overlapping_runs_fenced=overlaps,
        visible_writes_checked=visible,
    )


def _visible_writes(
    report: Report,
    op: Operation,
    order: list[tuple[float, str]],
    steps: dict[tuple[str, int], float],
) -> int:
    """Check each stamped log line of ``op``; how many there were."""
    begun = {run: t for t, run in order}
    count = 0
    for entry in op.logs:
        match = _LOG.match(entry.message)
        if not match:
            continue
        count += 1
        run, seq = match.group(1), int(match.group(2))
        written = steps.get((run, seq))
        if written is None or run not in begun:
            report.fail("unrecorded_write", f"{op.id}: {entry.message}")
            continue
        later = [t for t, other in order if other != run and begun[run] < t < written]
        if later:
            report.fail(
                "stale_write_visible",
                f"{op.id}: {entry.message} written "
                f"{written - later[0]:.3f}s after a later run started",
            )
    return count
