"""Authentication and roles: API keys, JWT bearer tokens, and who may do what."""

from __future__ import annotations

from longrun.auth.authenticator import METRICS_PRINCIPAL, Authenticator
from longrun.auth.keys import hash_secret, new_key, parse_key
from longrun.auth.principal import ANONYMOUS, Permission, Principal, Role, parse_role

__all__ = [
    "ANONYMOUS",
    "METRICS_PRINCIPAL",
    "Authenticator",
    "Permission",
    "Principal",
    "Role",
    "hash_secret",
    "new_key",
    "parse_key",
    "parse_role",
]
