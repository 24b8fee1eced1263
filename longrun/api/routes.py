"""Every native route of docs/rest-api.md, as one router."""

from __future__ import annotations

from fastapi import APIRouter

from longrun.api.routes_meta import router as meta_router
from longrun.api.routes_operations import router as operations_router
from longrun.api.routes_webhooks import router as webhooks_router

__all__ = ["router"]

router = APIRouter()
router.include_router(operations_router)
router.include_router(meta_router)
router.include_router(webhooks_router)
