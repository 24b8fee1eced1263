"""The public API of ``longrun`` is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import longrun

EXPECTED = {
    "ActionType",
    "App",
    "AsyncClient",
    "Client",
    "Conflict",
    "Context",
    "Gone",
    "IdempotencyMismatch",
    "IllegalTransition",
    "InvalidInput",
    "LogLevel",
    "LongrunError",
    "LostWorkerPolicy",
    "NotFound",
    "Operation",
    "OperationCancelled",
    "OperationError",
    "OperationType",
    "Progress",
    "RetryableError",
    "Service",
    "Settings",
    "Status",
    "StoreUnavailable",
    "WaitTimeout",
    "Worker",
    "__version__",
    "open_store",
}


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert set(longrun.__all__) == EXPECTED
    for name in longrun.__all__:
        assert getattr(longrun, name) is not None
        if name != "__version__":
            assert getattr(longrun, name).__module__.startswith("longrun.")


def test_importing_the_client_loads_no_engine_store_or_server() -> None:
    code = (
        "import sys, longrun.client; "
        "bad = [m for m in sys.modules if m.startswith(('longrun.engine', 'longrun.store', "
        "'longrun.service', 'longrun.api', 'fastapi', 'uvicorn'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
