"""The cost of one ctx.progress() call, in µs and against an empty method call as the baseline."""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime

from longrun.engine.context import Context
from longrun.model import ManualClock, Operation, Status, new_id

__all__ = ["main"]

N = 200_000
TARGET_US = 5.0


class _Empty:
    def progress(self, percent: float | None = None, **kwargs: object) -> None:
        pass


def _context() -> Context:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    op = Operation(
        id=new_id(),
        operation_type="bench",
        compartment_id="c1",
        status=Status.IN_PROGRESS,
        time_accepted=now,
        last_action_time=now,
    )
    return Context(op, clock=ManualClock(now))


def _best_us(stmt: str, namespace: dict[str, object]) -> float:
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=5, number=N)) / N * 1e6


def main() -> int:
    ctx, empty = _context(), _Empty()
    cases = {
        "percent": "ctx.progress(42.0)",
        "bytes": "ctx.progress(bytes_done=500, bytes_total=1000)",
        "bytes+property": "ctx.progress(bytes_done=500, bytes_total=1000, object_type='table')",
    }
    baseline = _best_us("empty.progress(42.0)", {"empty": empty})
    print(f"baseline (empty method call): {baseline:.3f} µs")
    worst = 0.0
    for name, stmt in cases.items():
        cost = _best_us(stmt, {"ctx": ctx})
        worst = max(worst, cost)
        print(f"ctx.progress {name:<15} {cost:.3f} µs  ({cost / baseline:.1f}x baseline)")
    print(
        f"worst {worst:.3f} µs; target < {TARGET_US} µs: {'ok' if worst < TARGET_US else 'MISSED'}"
    )
    return 0 if worst < TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
