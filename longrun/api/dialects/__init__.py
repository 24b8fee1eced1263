"""The cloud dialects: the same operations as Azure, Google, OCI and Cohesity clients see them."""

from __future__ import annotations

from fastapi import APIRouter

from longrun.api.dialects import azure, azure_legacy, cohesity, google, oci

__all__ = ["dialect_router"]


def dialect_router() -> APIRouter:
    """One router holding the routes of every dialect."""
    router = APIRouter()
    for module in (azure, azure_legacy, google, oci, cohesity):
        router.include_router(module.router)
    return router
