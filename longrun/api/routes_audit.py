"""The audit trail over HTTP, for admins: ``GET /v1/audit``, newest first."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from longrun.api.schemas import ErrorBody
from longrun.model import InvalidInput
from longrun.model.operation import WireModel
from longrun.pagination import MAX_LIMIT
from longrun.store.base import AuditRecord, Store

__all__ = ["AuditEntry", "AuditPage", "router"]

router = APIRouter(tags=["audit"])
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


class AuditEntry(WireModel):
    """One mutation: who asked, when, what, and how it ended (``ok`` or the error code)."""

    id: str
    time: datetime
    caller: str
    action: str
    outcome: str
    status: int
    target: str | None = None
    compartment_id: str | None = None


class AuditPage(WireModel):
    """A page of the audit trail; ``nextPage`` continues with older records."""

    items: list[AuditEntry]
    next_page: str | None = None


def _entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry.model_validate(record.__dict__)


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    responses={s: {"model": ErrorBody} for s in (400, 401, 403)},
    summary="The audit trail of mutations, newest first (admins)",
)
async def list_audit(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    page: Annotated[str | None, Query(description="nextPage of the previous page")] = None,
) -> Response:
    if page is not None and not _ID.fullmatch(page):
        raise InvalidInput("not a page token of this list", target="page")
    store: Store = request.app.state.store
    records = await store.list_audit(limit + 1, page)
    more = len(records) > limit
    records = records[:limit]
    body = AuditPage(items=[_entry(r) for r in records], next_page=records[-1].id if more else None)
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")
