"""API keys: ``lrk_<id>_<secret>``, shown once; the store keeps the id and a hash of the secret."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from longrun.auth.principal import Role
from longrun.model import InvalidInput
from longrun.store.access import ApiKey

__all__ = ["KEY_PREFIX", "hash_secret", "matches", "new_key", "parse_key"]

KEY_PREFIX = "lrk"
_KEY = re.compile(r"lrk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_COMPARTMENT = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NAME_MAX = 200
# compared against when the key id is unknown, so that a miss costs what a hit costs
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def hash_secret(secret: str) -> str:
    """The stored form of a secret: sha256 hex (the secret has 256 bits: no stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(
    role: Role, compartments: Iterable[str], now: datetime, name: str = ""
) -> tuple[str, ApiKey]:
    """A fresh key: its text (to show once) and what to store."""
    wanted = tuple(dict.fromkeys(compartments))
    for cid in wanted:
        if not _COMPARTMENT.fullmatch(cid):
            raise InvalidInput(
                "a compartment id is 1 to 128 of [A-Za-z0-9._:-]", target="compartment"
            )
    if role is not Role.ADMIN and not wanted:
        raise InvalidInput(
            "a reader or operator key needs at least one compartment", target="compartment"
        )
    if len(name) > _NAME_MAX:
        raise InvalidInput(f"a key name is at most {_NAME_MAX} characters", target="name")
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    text = f"{KEY_PREFIX}_{key_id}_{secret}"
    stored = ApiKey(key_id, hash_secret(secret), role.value, wanted, name, now)
    return text, stored


def parse_key(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a key's text, or None when it is not shaped like one of our keys."""
    match = _KEY.fullmatch(text)
    return (match[1], match[2]) if match else None


def matches(secret: str, stored: ApiKey | None) -> bool:
    """Whether ``secret`` is the secret of ``stored``, in time that does not depend on where
    they differ, nor (much) on whether the key exists."""
    expected = stored.secret_hash if stored is not None else _DUMMY_HASH
    return hmac.compare_digest(hash_secret(secret), expected) and stored is not None
