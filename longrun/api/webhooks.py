"""Webhooks on the API side: register a submit's callback, build the process's deliverer."""

from __future__ import annotations

from fastapi import Request

from longrun.api.schemas import CallbackRequest
from longrun.config import Settings
from longrun.engine.webhooks import WebhookDeliverer
from longrun.model import Clock, InvalidInput
from longrun.service import Service
from longrun.store.base import Store

__all__ = ["build_deliverer", "check_callback", "register_callback"]


def _secret(settings: Settings) -> str | None:
    return settings.webhook_secret.get_secret_value() if settings.webhook_secret else None


def check_callback(request: Request, callback: CallbackRequest) -> None:
    """Refuse, before anything is written, a callback that nothing could sign."""
    settings: Settings = request.app.state.settings
    if callback.secret is None and _secret(settings) is None:
        raise InvalidInput(
            "this server has no LONGRUN_WEBHOOK_SECRET: give the callback a secret",
            target="callback.secret",
        )


async def register_callback(request: Request, op_id: str, callback: CallbackRequest) -> None:
    """Store the callback of a just-accepted operation (its secret, or the server's, signs it)."""
    service: Service = request.app.state.service
    await service.store.add_callback(op_id, callback.url, callback.secret, service.clock.now())


def build_deliverer(store: Store, clock: Clock, settings: Settings) -> WebhookDeliverer:
    """The webhook deliverer of a serve or worker process, configured from ``settings``."""
    return WebhookDeliverer(
        store,
        clock=clock,
        secret=_secret(settings),
        concurrency=settings.webhook_concurrency,
        timeout=settings.webhook_timeout,
        max_attempts=settings.webhook_max_attempts,
        retry_base=settings.webhook_retry_base,
    )
