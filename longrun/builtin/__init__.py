"""The operation types that ship with longrun; ``default_app()`` is what ``serve`` and ``worker`` load."""

from __future__ import annotations

from longrun.builtin import demo
from longrun.engine.registry import App

__all__ = ["default_app"]


def default_app() -> App:
    """A fresh App holding every built-in operation type."""
    app = App()
    app.include(demo.app)
    return app
