"""Webhooks on the API side: check and register a submit's callback."""

from __future__ import annotations

from fastapi import Request

from longrun.api.schemas import CallbackRequest
from longrun.bootstrap import webhook_secret
from longrun.config import Settings
from longrun.model import InvalidInput
from longrun.service import Service

__all__ = ["check_callback", "register_callback"]


def check_callback(request: Request, callback: CallbackRequest) -> None:
    """Refuse, before anything is written, a callback that nothing could sign."""
    settings: Settings = request.app.state.settings
    if callback.secret is None and webhook_secret(settings) is None:
        raise InvalidInput(
            "this server has no LONGRUN_WEBHOOK_SECRET: give the callback a secret",
            target="callback.secret",
        )


async def register_callback(request: Request, op_id: str, callback: CallbackRequest) -> None:
    """Store the callback of a just-accepted operation (its secret, or the server's, signs it)."""
    service: Service = request.app.state.service
    await service.store.add_callback(op_id, callback.url, callback.secret, service.clock.now())
