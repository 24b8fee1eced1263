"""The process verbs: ``serve`` (the API, with an embedded worker by default) and ``worker``."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import typer

from longrun.cli._app import app, errors
from longrun.cli._process import tune_gc

__all__ = ["run_worker", "settings_from"]

logger = logging.getLogger(__name__)

_STOP_GRACE = 10.0
_DB = typer.Option(None, "--db", help="store URL, e.g. sqlite:///longrun.db (env LONGRUN_DB)")
_APPS = typer.Option([], "--app", help="extra operation types, module:attr (repeatable)")


def settings_from(**overrides: Any) -> Any:
    """Settings from the environment, with every option given on the command line on top."""
    from longrun.config import Settings  # the server extras are needed from here on

    return Settings(**{k: v for k, v in overrides.items() if v not in (None, [])})


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    db: str | None = _DB,
    host: str | None = typer.Option(None, "--host", help="default 127.0.0.1 (env LONGRUN_HOST)"),
    port: int | None = typer.Option(None, "--port", help="default 8080 (env LONGRUN_PORT)"),
    no_worker: bool = typer.Option(False, "--no-worker", help="API only; run `longrun worker`s"),
    apps: list[str] = _APPS,
) -> None:
    """Run the REST API (and, unless --no-worker, a worker in the same process)."""
    with errors():
        import uvicorn

        from longrun.api.app import create_app

        settings = settings_from(
            db=db, host=host, port=port, apps=apps, embedded_worker=False if no_worker else None
        )
        from longrun.cli._security import bind_notice

        notice = bind_notice(settings)  # refuses a public bind without auth
        api = create_app(settings)
    _logging()
    logger.log(logging.WARNING if settings.auth == "off" else logging.INFO, notice)
    tune_gc()
    uvicorn.run(api, host=settings.host, port=settings.port, log_level="info", lifespan="on")


async def run_worker(settings: Any, stop: asyncio.Event | None = None) -> None:
    """Run one worker on ``settings.db`` until ``stop`` is set (SIGINT or SIGTERM by default)."""
    from longrun.bootstrap import build_deliverer, build_worker, load_app
    from longrun.store import open_store

    operation_app = load_app(settings)
    store = open_store(settings.db)
    await store.open()
    try:
        worker = build_worker(store, operation_app, None, settings)
        deliverer = build_deliverer(store, None, settings)  # workers deliver webhooks too
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await worker.start()
        await deliverer.start()
        logger.info("worker started on %s with %d slots", settings.db, settings.worker_slots)
        try:
            await stop.wait()
        finally:
            logger.info("worker stopping")
            await deliverer.stop()
            await worker.stop(_STOP_GRACE)
    finally:
        await store.close()


@app.command()
def worker(
    db: str | None = _DB,
    slots: int | None = typer.Option(None, "--slots", min=1, help="operations run at once"),
    apps: list[str] = _APPS,
) -> None:
    """Run a worker only: claim operations from the store and run their handlers."""
    with errors():
        settings = settings_from(db=db, worker_slots=slots, apps=apps)
        _logging()
        tune_gc()
        asyncio.run(run_worker(settings))
