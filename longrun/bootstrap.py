"""What a serve or worker process assembles from its settings: operation types, worker, deliverer."""

from __future__ import annotations

import importlib
import os
from typing import Any

from longrun.config import Settings
from longrun.engine.registry import App
from longrun.model import Clock, ConfigurationError
from longrun.store.base import Store

__all__ = ["SKEW_ENV", "build_worker", "load_app", "worker_clock"]

SKEW_ENV = "LONGRUN_CLOCK_SKEW_SECONDS"  # fault injection: a worker's clock runs off by this


def _import_attr(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"an app is given as module:attribute, not {spec!r}")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load the app {spec!r}: {exc}") from exc
    return value


def _default_app(settings: Settings) -> App:
    try:
        builtin = importlib.import_module("longrun.builtin")
    except ModuleNotFoundError as exc:
        if exc.name not in ("longrun.builtin", "longrun"):
            raise
        return App()
    factory = getattr(builtin, "default_app", None)
    return factory(settings) if factory is not None else App()


def load_app(settings: Settings) -> App:
    """The built-in operation types plus every ``module:attr`` of ``settings.apps``."""
    app = _default_app(settings)
    for spec in settings.apps:
        extra = _import_attr(spec)
        if callable(extra) and not isinstance(extra, App):
            extra = extra()
        if not isinstance(extra, App):
            raise ConfigurationError(f"{spec!r} is not a longrun App")
        app.include(extra)
    return app


def worker_clock() -> Clock:
    """The system clock, shifted when LONGRUN_CLOCK_SKEW_SECONDS is set (chaos tests only)."""
    from longrun.model.clock import SkewedClock, SystemClock

    skew = float(os.environ.get(SKEW_ENV) or 0)
    return SkewedClock(skew) if skew else SystemClock()


def build_worker(store: Store, app: App, clock: Clock | None, settings: Settings) -> Any:
    """A Worker on ``store`` for ``app``, configured from ``settings`` (not started); without a
    clock, the worker's clock is ``worker_clock()``."""
    from longrun.engine.caps import EntryCaps
    from longrun.engine.worker import Worker  # loaded only by processes that run a worker

    caps = EntryCaps(
        settings.max_logs_per_operation,
        settings.max_errors_per_operation,
        settings.max_resources_per_operation,
    )
    return Worker(
        store,
        app,
        clock=clock if clock is not None else worker_clock(),
        slots=settings.worker_slots,
        lease_seconds=settings.lease_seconds,
        flush_interval=settings.flush_interval,
        poll_interval=settings.poll_interval,
        reaper_interval=settings.reaper_interval,
        retention_seconds=settings.retention_seconds,
        tombstone_retention_seconds=settings.tombstone_retention_seconds,
        audit_retention_seconds=settings.audit_retention_seconds,
        entry_caps=caps,
    )


def webhook_secret(settings: Settings) -> str | None:
    """The server-wide webhook signing secret, if one is configured."""
    return settings.webhook_secret.get_secret_value() if settings.webhook_secret else None


def build_deliverer(store: Store, clock: Clock | None, settings: Settings) -> Any:
    """The webhook deliverer of a serve or worker process, configured from ``settings``."""
    from longrun.engine.webhooks import WebhookDeliverer

    return WebhookDeliverer(
        store,
        clock=clock,
        secret=webhook_secret(settings),
        concurrency=settings.webhook_concurrency,
        timeout=settings.webhook_timeout,
        max_attempts=settings.webhook_max_attempts,
        retry_base=settings.webhook_retry_base,
    )
