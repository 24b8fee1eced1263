"""Schemathesis against a real `longrun serve` with auth: no 5xx, every response as documented."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.acceptance.conftest import Cluster
from tests.support import free_port

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
EXAMPLES = int(os.environ.get("LONGRUN_SCHEMATHESIS_EXAMPLES", "25"))
# SSE streams never end on their own: a test client would wait forever (the matrix covers them)
STREAMS = r"/events$"
CASES: dict[str, int] = {}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    """`longrun serve --no-worker` with API keys on a temp SQLite file, and an admin key."""
    home = tmp_path_factory.mktemp("schemathesis")
    env = {
        **os.environ,
        "LONGRUN_DB": f"sqlite:///{home}/longrun.db",
        "LONGRUN_AUTH": "keys",
        "LONGRUN_RATE_LIMIT_PER_SECOND": "0",
        "LONGRUN_MAX_WAIT_SECONDS": "0.5",
        "LONGRUN_DATA_DIR": str(home / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("LONGRUN_URL", None)
    cluster = Cluster(Path(home), free_port(), env)
    created = cluster.cli("keys", "create", "--role", "admin", "--name", "schemathesis")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    try:
        cluster.serve()
        yield cluster, key
    finally:
        for proc in cluster.procs:
            proc.stop()
        total = sum(CASES.values())
        print(f"\nschemathesis: {total} cases over {len(CASES)} operations")


def _fuzz(operation: Any, url: str, key: str) -> None:
    """Run EXAMPLES generated cases of one operation through the three checks."""
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode)))
    def run(case: Any) -> None:
        CASES[label] = CASES.get(label, 0) + 1
        case.call_and_validate(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS, timeout=10
        )

    run()


def test_every_route_answers_as_documented(live: tuple[Cluster, str], record_property: Any) -> None:
    cluster, key = live
    schema = schemathesis.openapi.from_url(f"{cluster.url}/openapi.json")
    operations = [op.ok() for op in schema.exclude(path_regex=STREAMS).get_all_operations()]
    failures: list[str] = []
    for operation in operations:
        try:
            _fuzz(operation, cluster.url, key)
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # every operation runs; the failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    record_property("schemathesis_cases", sum(CASES.values()))
    assert len(operations) >= 40 and sum(CASES.values()) >= len(operations)
    assert not failures, "\n\n".join(failures)
