"""The ``longrun`` command: serve, worker, and the client verbs (submit, status, watch, …)."""

from __future__ import annotations

from longrun.cli import _builtin_verbs, _security, _serve, _verbs
from longrun.cli._app import app

__all__ = ["app", "main"]

_REGISTERED = (
    _builtin_verbs,
    _security,
    _serve,
    _verbs,
)  # importing them registers their verbs on `app`


def main() -> None:
    """The console script."""
    app()


if __name__ == "__main__":
    main()
