"""longrun: run long-running operations and tell everyone, at every moment, where each one stands.

The names below load lazily, so that ``import longrun.client`` pulls in neither the engine nor
the store, and a client-only install needs no server packages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "App": "longrun.engine.registry",
    "OperationType": "longrun.engine.registry",
    "Context": "longrun.engine.context",
    "OperationCancelled": "longrun.engine.context",
    "Worker": "longrun.engine.worker",
    "Service": "longrun.service",
    "open_store": "longrun.store",
    "Client": "longrun.client",
    "AsyncClient": "longrun.client",
    "Settings": "longrun.config",
    "ActionType": "longrun.model",
    "LogLevel": "longrun.model",
    "LostWorkerPolicy": "longrun.model",
    "Operation": "longrun.model",
    "Progress": "longrun.model",
    "Status": "longrun.model",
    "LongrunError": "longrun.model",
    "InvalidInput": "longrun.model",
    "NotFound": "longrun.model",
    "Gone": "longrun.model",
    "IllegalTransition": "longrun.model",
    "IdempotencyMismatch": "longrun.model",
    "Conflict": "longrun.model",
    "StoreUnavailable": "longrun.model",
    "WaitTimeout": "longrun.model",
    "OperationError": "longrun.model",
    "RetryableError": "longrun.model",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from longrun.client import AsyncClient, Client
    from longrun.config import Settings
    from longrun.engine.context import Context, OperationCancelled
    from longrun.engine.registry import App, OperationType
    from longrun.engine.worker import Worker
    from longrun.model import (
        ActionType,
        Conflict,
        Gone,
        IdempotencyMismatch,
        IllegalTransition,
        InvalidInput,
        LogLevel,
        LongrunError,
        LostWorkerPolicy,
        NotFound,
        Operation,
        OperationError,
        Progress,
        RetryableError,
        Status,
        StoreUnavailable,
        WaitTimeout,
    )
    from longrun.service import Service
    from longrun.store import open_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'longrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
