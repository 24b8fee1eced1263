"""The short chaos run (bench/chaos) as a test: real servers, workers, clients and faults; zero
invariant violations, and every fault kind injected at least once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.chaos.faults import KINDS
from bench.chaos.runner import Options, run

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(240)]

HANDLER_FAULTS = ["handler_exit", "handler_raise", "handler_hang", "process_restarts"]


def _short_run(engine: str, duration: float, home: Path) -> None:
    result = run(Options(engine=engine, duration=duration, seed=None, home=home, settle=90))
    summary = result.summary()
    print(summary)  # pytest shows it when the test fails; `-s` shows it always
    assert result.violations == 0, summary["violation_examples"]
    assert result.report.figures["submitted"] >= 50, summary
    kinds = [k for k in KINDS if engine == "postgres" or k != "postgres_restart"]
    missing = [k for k in [*kinds, *HANDLER_FAULTS] if not result.faults.get(k)]
    assert not missing, (missing, summary)
    assert not result.fault_errors, result.fault_errors


def test_chaos_short_sqlite(tmp_path: Path) -> None:
    _short_run("sqlite", 55.0, tmp_path)


@pytest.mark.skipif(
    not os.environ.get("LONGRUN_TEST_POSTGRES") or not os.environ.get("LONGRUN_TEST_PGDATA"),
    reason="needs the throwaway PostgreSQL server of scripts/with-postgres (it is restarted)",
)
def test_chaos_short_postgres(tmp_path: Path) -> None:
    _short_run("postgres", 35.0, tmp_path)
