"""The dashboard: static HTML, one script and one stylesheet, served at ``/`` with no build step."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["DASHBOARD_DIR", "install_dashboard"]

DASHBOARD_DIR = Path(__file__).parent
# the page loads only its own files and talks only to this server
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def _index() -> Response:
    return FileResponse(
        DASHBOARD_DIR / "index.html",
        media_type="text/html",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
    )


def install_dashboard(api: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/dashboard/``."""
    api.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    api.mount("/dashboard", StaticFiles(directory=DASHBOARD_DIR), name="dashboard")
