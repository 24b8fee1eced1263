"""Helpers shared by the tests that run real processes: a free port, the CLI command, polling."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

__all__ = ["COMMAND", "STARTUP_TIMEOUT", "free_port", "until"]

T = TypeVar("T")

STARTUP_TIMEOUT = 30.0
_ENTRY = Path(sys.executable).with_name("longrun")
# the installed entry point when there is one, else the module (same code either way)
COMMAND = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "longrun.cli"]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {timeout}s")
        time.sleep(0.05)
