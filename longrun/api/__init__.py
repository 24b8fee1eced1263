"""The HTTP API: native REST routes over the service, one error shape, bounded bodies."""

from __future__ import annotations

from longrun.api.app import create_app

__all__ = ["create_app"]
