"""Pages and opaque page tokens: url-safe base64 of a small JSON bound to its filters."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from longrun.model import InvalidInput, canonical_json, is_operation_id

__all__ = [
    "MAX_LIMIT",
    "Page",
    "check_limit",
    "cursor_page",
    "decode_cursor",
    "decode_offset",
    "encode_cursor",
    "encode_offset",
    "filters_hash",
    "offset_page",
]

T = TypeVar("T")

MAX_LIMIT = 1000
_MAX_TOKEN_CHARS = 512


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_page`` is the token of the following page, None on the last."""

    items: list[T] = field(default_factory=list)
    next_page: str | None = None


def check_limit(limit: int) -> int:
    """``limit`` when it is 1..MAX_LIMIT; InvalidInput with target ``limit`` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}", target="limit")
    return limit


def filters_hash(filters: Any) -> str:
    """A short digest of the filters, so that a token cannot be replayed against other filters."""
    return hashlib.sha256(canonical_json(filters).encode()).hexdigest()[:16]


def _encode(payload: dict[str, Any]) -> str:
    raw = canonical_json(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_token() -> InvalidInput:
    return InvalidInput("the page token is not valid for this list", target="page")


def _decode(token: str, digest: str) -> dict[str, Any]:
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise _bad_token()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _bad_token() from None
    if not isinstance(payload, dict) or payload.get("f") != digest:
        raise _bad_token()
    return payload


def encode_cursor(last_id: str, digest: str) -> str:
    """The token of the page that follows the operation ``last_id``."""
    return _encode({"c": last_id, "f": digest})


def decode_cursor(token: str, digest: str) -> str:
    """The cursor id inside ``token``; InvalidInput (target ``page``) if it is not ours."""
    cursor = _decode(token, digest).get("c")
    if not isinstance(cursor, str) or not is_operation_id(cursor):
        raise _bad_token()
    return cursor


def encode_offset(offset: int, digest: str) -> str:
    """The token of the page that starts at ``offset``."""
    return _encode({"o": offset, "f": digest})


def decode_offset(token: str, digest: str) -> int:
    """The offset inside ``token``; InvalidInput (target ``page``) if it is not ours."""
    offset = _decode(token, digest).get("o")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise _bad_token()
    return offset


def cursor_page(rows: list[Any], limit: int, digest: str) -> Page[Any]:
    """The page of ``rows`` fetched with ``limit + 1``: the extra row only says there is more."""
    if len(rows) <= limit:
        return Page(items=rows)
    items = rows[:limit]
    return Page(items=items, next_page=encode_cursor(items[-1].id, digest))


def offset_page(entries: list[T], limit: int, token: str | None, digest: str) -> Page[T]:
    """The page of ``entries`` that ``token`` points at (the first page when None)."""
    check_limit(limit)
    start = decode_offset(token, digest) if token is not None else 0
    end = start + limit
    return Page(entries[start:end], encode_offset(end, digest) if end < len(entries) else None)
