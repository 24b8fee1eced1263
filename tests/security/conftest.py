"""A secured server (keys + JWT, uvicorn in the test's loop) and a credential for every role."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from longrun.api import create_app
from longrun.auth import Role, new_key
from longrun.model import utcnow
from longrun.store import Store
from tests.integration.conftest import make_test_app, settings_for
from tests.integration.sse import serve_app

__all__ = ["ISSUER", "SECRET", "Secured", "token"]

SECRET = "test-secret-of-32-bytes-or-more!!"
ISSUER = "https://issuer.test"
AUDIENCE = "longrun"
METRICS_TOKEN = "scrape-token-0123456789"


def token(role: str, compartments: list[str], *, ttl: float = 300, **claims: Any) -> str:
    """An HS256 JWT of the test issuer."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"user-{role}", "iat": now, "exp": now + ttl}
    body.update(role=role, compartments=compartments, **claims)
    return jwt.encode(body, SECRET, algorithm="HS256")


@dataclass
class Secured:
    """The running server, its store and one Authorization header per credential."""

    url: str
    store: Store
    app: Any
    headers: dict[str, dict[str, str]]
    key_ids: dict[str, str]

    def client(self, credential: str | None, **options: Any) -> httpx.AsyncClient:
        headers = self.headers.get(credential or "", {})
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10, **options)


async def _key(store: Store, role: Role, compartments: list[str]) -> tuple[str, str]:
    text, stored = new_key(role, compartments, utcnow(), f"test {role.value}")
    await store.create_key(stored)
    return text, stored.id


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    """One secured server for a whole module (its tests share the loop)."""
    settings = settings_for(
        tmp_path_factory.mktemp("secured"),
        auth="keys+jwt",
        jwt_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        metrics_token=METRICS_TOKEN,
        rate_limit_per_second=0,
        auth_recheck_seconds=0.1,
        max_body_bytes=1 << 20,
    )
    app = create_app(settings, app=make_test_app())
    async with serve_app(app) as url:
        store: Store = app.state.store
        headers: dict[str, dict[str, str]] = {}
        key_ids: dict[str, str] = {}
        for name, role, scope in (
            ("reader", Role.READER, ["own"]),
            ("operator", Role.OPERATOR, ["own"]),
            ("admin", Role.ADMIN, []),
        ):
            text, key_ids[name] = await _key(store, role, scope)
            headers[name] = _bearer(text)
        headers["jwt-operator"] = _bearer(token("operator", ["own"]))
        headers["metrics"] = _bearer(METRICS_TOKEN)
        headers["invalid"] = _bearer("lrk_0123456789abcdef_" + "A" * 43)
        headers["expired"] = _bearer(token("admin", [], ttl=-3600))
        headers["garbage"] = {"Authorization": "Basic dXNlcjpwYXNz"}
        yield Secured(url, store, app, headers, key_ids)
