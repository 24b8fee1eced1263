"""Who is calling and what they may do: roles, permissions and the authenticated principal."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from longrun.model import InvalidInput

__all__ = ["ANONYMOUS", "Permission", "Principal", "Role", "parse_role"]


class Role(enum.StrEnum):
    """What a caller may do: each role can do everything the one before it can."""

    READER = "reader"  # read operations, their logs and streams
    OPERATOR = "operator"  # + submit, cancel, hold, release
    ADMIN = "admin"  # + delete, the audit trail, metrics, every compartment


class Permission(enum.IntEnum):
    """What a route needs, ordered so that a role's rank answers whether it may."""

    PUBLIC = 0  # no credentials at all (health, the dashboard's static files, the schema)
    READ = 1
    OPERATE = 2
    METRICS = 3  # admin, or the configured scrape token
    ADMIN = 4


_RANK = {
    Role.READER: Permission.READ,
    Role.OPERATOR: Permission.OPERATE,
    Role.ADMIN: Permission.ADMIN,
}


def parse_role(value: object) -> Role:
    """The Role named by ``value``; InvalidInput for anything else."""
    try:
        return Role(str(value).lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidInput(f"a role is one of {names}", target="role") from None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``compartments`` None means every compartment (admins)."""

    caller: str  # "key:<id>", "jwt:<sub>", "metrics", "anonymous"
    role: Role
    compartments: frozenset[str] | None
    key_id: str | None = None
    expires: datetime | None = None  # a token's exp: streams end when it passes

    def __str__(self) -> str:
        return self.caller

    def may(self, permission: Permission) -> bool:
        """Whether this caller's role covers ``permission``."""
        if permission is Permission.PUBLIC:
            return True
        if self.caller == "metrics":  # the scrape token opens /metrics and nothing else
            return permission is Permission.METRICS
        return _RANK[self.role] >= permission


ANONYMOUS = Principal("anonymous", Role.ADMIN, None)  # auth off: the caller may do everything
