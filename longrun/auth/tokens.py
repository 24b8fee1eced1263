"""JWT bearer tokens: HS256 with a shared secret, or RS256/ES256 with the keys of a JWKS file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from longrun.auth.principal import Principal, Role, parse_role
from longrun.config import Settings
from longrun.model import ConfigurationError, InvalidInput, Unauthorized

__all__ = ["JwtVerifier"]

_ASYMMETRIC = ["RS256", "ES256"]


def _compartments(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return frozenset()


class JwtVerifier:
    """Checks signature, issuer, audience, expiry and not-before; reads role and compartments
    from the configured claims."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise ConfigurationError("JWT auth needs LONGRUN_JWT_ISSUER and LONGRUN_JWT_AUDIENCE")
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway_seconds
        self.role_claim = settings.jwt_role_claim
        self.compartments_claim = settings.jwt_compartments_claim
        self._secret: str | None = None
        self._jwks: jwt.PyJWKSet | None = None
        if settings.jwt_secret is not None:
            self._secret = settings.jwt_secret.get_secret_value()
            self.algorithms = ["HS256"]
        elif settings.jwt_jwks_file:
            try:
                self._jwks = jwt.PyJWKSet.from_json(Path(settings.jwt_jwks_file).read_text())
            except (OSError, jwt.PyJWTError) as exc:
                raise ConfigurationError(f"cannot read the JWKS file: {exc}") from None
            self.algorithms = _ASYMMETRIC
        else:
            raise ConfigurationError("JWT auth needs LONGRUN_JWT_SECRET or LONGRUN_JWT_JWKS_FILE")

    def _key(self, token: str) -> Any:
        if self._secret is not None:
            return self._secret
        if self._jwks is None:
            raise jwt.InvalidKeyError("no key configured")
        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._jwks.keys
        found = [k for k in keys if kid is None or k.key_id == kid]
        if len(found) != 1:
            raise jwt.InvalidKeyError("no single key of the JWKS matches the token")
        return found[0]

    def verify(self, token: str) -> Principal:
        """The principal a valid token stands for; Unauthorized (without echoing it) otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet") from None
        except jwt.PyJWTError:
            raise Unauthorized("the credentials are not valid") from None
        try:
            role = parse_role(claims.get(self.role_claim))
        except InvalidInput:
            raise Unauthorized(f"the token has no valid {self.role_claim!r} claim") from None
        scope = None if role is Role.ADMIN else _compartments(claims.get(self.compartments_claim))
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        subject = str(claims.get("sub") or "?")[:200]
        return Principal(f"jwt:{subject}", role, scope, expires=expires)
