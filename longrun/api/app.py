"""The ASGI app: ``create_app(settings)`` wires the store, the registry, the service and the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from longrun.api.audit import AuditTrail
from longrun.api.auth import AuthMiddleware, Gate, authorize
from longrun.api.dashboard import install_dashboard
from longrun.api.dialects import dialect_router
from longrun.api.errors import install_error_handlers
from longrun.api.events import ChangeHub, install_shutdown_signals
from longrun.api.limits import BodyLimitMiddleware
from longrun.api.metrics import router as metrics_router
from longrun.api.openapi import install_openapi
from longrun.api.ratelimit import RateLimiter
from longrun.api.routes import router
from longrun.api.routes_audit import router as audit_router
from longrun.api.routes_events import router as events_router
from longrun.auth import Authenticator
from longrun.bootstrap import build_deliverer, build_worker, load_app
from longrun.config import Settings
from longrun.engine.registry import App
from longrun.model import Clock, SystemClock
from longrun.service import Service
from longrun.store.base import Store

__all__ = ["WorkerFactory", "create_app", "load_app"]  # load_app: see longrun.bootstrap

logger = logging.getLogger(__name__)

# worker_factory(store, app, clock, settings) -> an object with async start() and stop(grace)
WorkerFactory = Callable[[Store, App, Clock, Settings], Any]

_STOP_GRACE = 10.0


def _gate(settings: Settings, store: Store, clock: Clock) -> Gate:
    authenticator = Authenticator(settings, store)
    rate = settings.rate_limit_per_second
    if rate is None:
        rate = 50.0 if authenticator.enabled else 0.0
    return Gate(
        authenticator,
        RateLimiter(rate, settings.rate_limit_burst),
        AuditTrail(store),
        clock,
        settings.auth_recheck_seconds,
    )


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    app: App | None = None,
    clock: Clock | None = None,
    worker_factory: WorkerFactory | None = None,
) -> FastAPI:
    """The longrun ASGI app. The lifespan opens the store (and closes it when it built it) and,
    with ``settings.embedded_worker``, runs a worker in the same process."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    owns_store = store is None
    if store is None:
        from longrun.store import open_store

        store = open_store(settings.db)
    op_app = app if app is not None else load_app(settings)
    service = Service(store, op_app, clock=clock, max_wait_seconds=settings.max_wait_seconds)
    make_worker = worker_factory or build_worker
    the_store: Store = store
    hub = ChangeHub(store, now=clock.now, max_streams_per_client=settings.max_streams_per_caller)
    gate = _gate(settings, store, clock)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        await the_store.open()
        worker = None
        restore_signals = install_shutdown_signals(hub)
        deliverer = build_deliverer(the_store, clock, settings)
        try:
            await deliverer.start()
            if settings.embedded_worker:
                worker = make_worker(the_store, op_app, clock, settings)
                await worker.start()
                api.state.worker = worker
            yield
        finally:
            restore_signals()
            await hub.stop()
            await deliverer.stop()
            if worker is not None:
                await worker.stop(_STOP_GRACE)
            if owns_store:
                await the_store.close()

    api = FastAPI(
        title="longrun",
        version="1",
        summary="Long-running operations and where each one stands",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],  # every route checks the caller's role
    )
    api.state.settings = settings
    api.state.store = store
    api.state.service = service
    api.state.operation_app = op_app
    api.state.worker = None
    api.state.events = hub
    install_error_handlers(api)
    api.include_router(router)
    api.include_router(events_router)
    api.include_router(metrics_router)
    api.include_router(audit_router)
    install_dashboard(api)
    api.include_router(dialect_router())
    install_openapi(api)
    api.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    api.add_middleware(AuthMiddleware, gate=gate)  # outermost: runs first
    api.state.authenticator = gate.authenticator
    return api
