"""The no-op operation type the benchmarks drain (importable as ``noop_app:app``)."""

from __future__ import annotations

from typing import Any

from longrun.engine.registry import App

__all__ = ["app"]

app = App()


@app.operation("bench.noop")
async def noop(ctx: Any, input: Any) -> None:  # noqa: A002
    """Does nothing: what is measured is longrun's own cost."""
    return None
