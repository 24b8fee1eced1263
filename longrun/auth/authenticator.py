"""Turns an ``Authorization`` header into a Principal: API keys, JWTs, the metrics token."""

from __future__ import annotations

import hmac
from datetime import datetime

from longrun.auth.keys import matches, parse_key
from longrun.auth.principal import ANONYMOUS, Principal, Role
from longrun.auth.tokens import JwtVerifier
from longrun.config import Settings
from longrun.model import ConfigurationError, Unauthorized
from longrun.store.base import Store

__all__ = ["METRICS_PRINCIPAL", "Authenticator"]

METRICS_PRINCIPAL = Principal("metrics", Role.READER, frozenset())
_MODES = {"off": set(), "keys": {"keys"}, "jwt": {"jwt"}, "keys+jwt": {"keys", "jwt"}}
_INVALID = "the credentials are not valid"  # one message for unknown, wrong and revoked


class Authenticator:
    """Checks bearer credentials against the store's keys and the configured JWT issuer."""

    def __init__(self, settings: Settings, store: Store) -> None:
        modes = _MODES.get(settings.auth)
        if modes is None:
            raise ConfigurationError("LONGRUN_AUTH is off, keys, jwt or keys+jwt")
        self.modes = modes
        self.store = store
        self.jwt = JwtVerifier(settings) if "jwt" in modes else None
        token = settings.metrics_token
        self._metrics_token = token.get_secret_value() if token is not None else None

    @property
    def enabled(self) -> bool:
        return bool(self.modes)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller; Unauthorized when credentials are missing or not valid."""
        if not self.enabled:
            return ANONYMOUS
        if not authorization:
            raise Unauthorized("credentials are required: Authorization: Bearer <key or token>")
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized("credentials go in Authorization: Bearer <key or token>")
        if self._metrics_token and hmac.compare_digest(
            credential.encode(), self._metrics_token.encode()
        ):
            return METRICS_PRINCIPAL
        parsed = parse_key(credential) if "keys" in self.modes else None
        if parsed is not None:
            return await self._from_key(*parsed)
        if self.jwt is not None and credential.count(".") == 2:
            return self.jwt.verify(credential)
        raise Unauthorized(_INVALID)

    async def _from_key(self, key_id: str, secret: str) -> Principal:
        stored = await self.store.get_key(key_id)
        if not matches(secret, stored) or stored is None or stored.is_revoked:
            raise Unauthorized(_INVALID)
        role = Role(stored.role)
        scope = None if role is Role.ADMIN else frozenset(stored.compartments)
        return Principal(f"key:{key_id}", role, scope, key_id=key_id)

    async def is_still_valid(self, principal: Principal, now: datetime) -> bool:
        """Whether a caller authenticated earlier still is: its key not revoked, its token not
        expired. Long requests (streams, waits) ask this now and then."""
        if principal.expires is not None and now >= principal.expires:
            return False
        if principal.key_id is not None:
            stored = await self.store.get_key(principal.key_id)
            return stored is not None and not stored.is_revoked
        return True
