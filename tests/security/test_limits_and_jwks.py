"""The per-caller rate limit, and JWTs checked against a JWKS file."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from longrun.api import create_app
from longrun.auth import Role, new_key
from longrun.model import utcnow
from tests.integration.conftest import make_test_app, settings_for, wait_until
from tests.integration.sse import EventReader, serve_app

ISSUER = "https://issuer.test"
AUDIENCE = "longrun"


@contextlib.asynccontextmanager
async def _server(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[str, Any]]:
    app = create_app(settings_for(tmp_path, **overrides), app=make_test_app())
    async with serve_app(app) as url:
        yield url, app


async def _key(app: Any, role: Role = Role.READER) -> dict[str, str]:
    text, stored = new_key(role, ["own"], utcnow())
    await app.state.store.create_key(stored)
    return {"Authorization": f"Bearer {text}"}


async def test_a_caller_past_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    async with _server(tmp_path, auth="keys", rate_limit_per_second=0.1, rate_limit_burst=2) as (
        url,
        app,
    ):
        fast, other = await _key(app), await _key(app)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            statuses = [(await http.get("/v1/operations", headers=fast)).status_code for _ in "ab"]
            limited = await http.get("/v1/operations", headers=fast)
            elsewhere = await http.get("/v1/operations", headers=other)
        assert statuses == [200, 200]
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "RateLimited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        assert elsewhere.status_code == 200  # buckets are per caller


async def test_a_caller_past_its_open_streams_gets_429(tmp_path: Path) -> None:
    async with _server(
        tmp_path, auth="keys", rate_limit_per_second=0, max_streams_per_caller=1
    ) as (url, app):
        mine, other = await _key(app), await _key(app)
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as http,
            http.stream("GET", "/v1/events", headers=mine) as first,
        ):
            assert first.status_code == 200
            # keep the reader: a collected line iterator closes the response, hence the stream
            reader = EventReader(first)
            assert (await reader.next()).event == "ready"  # type: ignore[union-attr]
            second = await http.get("/v1/events", headers=mine)
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "RateLimited"
            async with http.stream("GET", "/v1/events", headers=other) as theirs:
                assert theirs.status_code == 200  # the limit is per caller
            hub = app.state.events

            async def only_the_first_is_open() -> bool:
                return bool(hub.subscribers == 1)

            await wait_until(only_the_first_is_open, timeout=5)


# JWKS ----------------------------------------------------------------------------------------


def _jwks(path: Path) -> dict[str, Any]:
    """An RSA and an EC key pair; their public halves written to ``path`` as a JWKS."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, algorithm, private in (
        ("rsa-1", RSAAlgorithm, rsa_key),
        ("ec-1", ECAlgorithm, ec_key),
    ):
        public = json.loads(algorithm.to_jwk(private.public_key()))
        keys.append({**public, "kid": kid, "use": "sig"})
    path.write_text(json.dumps({"keys": keys}))
    return {"RS256": ("rsa-1", rsa_key), "ES256": ("ec-1", ec_key)}


def _token(signer: tuple[str, Any], algorithm: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "someone",
        "exp": now + 300,
        "role": "reader",
        "compartments": ["own"],
        **changes,
    }
    kid, key = signer
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid})


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_jwks_tokens_are_checked_for_signature_issuer_audience_and_time(
    tmp_path: Path, algorithm: str
) -> None:
    signers = _jwks(tmp_path / "jwks.json")
    stranger = _jwks(tmp_path / "other.json")  # same kids, keys the server does not know
    now = int(time.time())
    signer = signers[algorithm]
    refused = {
        "wrong audience": _token(signer, algorithm, aud="someone-else"),
        "wrong issuer": _token(signer, algorithm, iss="https://evil.test"),
        "expired": _token(signer, algorithm, exp=now - 3600),
        "not yet valid": _token(signer, algorithm, nbf=now + 3600),
        "unknown key": _token(stranger[algorithm], algorithm),
        "no role": _token(signer, algorithm, role="root"),
    }
    async with (
        _server(
            tmp_path,
            auth="jwt",
            jwt_jwks_file=str(tmp_path / "jwks.json"),
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
        ) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):

        async def get(token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return await http.get("/v1/operations", headers=headers)

        ok = await get(_token(signer, algorithm))
        assert ok.status_code == 200, ok.text
        answers = {name: await get(token) for name, token in refused.items()}
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == dict.fromkeys(refused, 401)
    assert all(r.headers["WWW-Authenticate"].startswith("Bearer") for r in answers.values())
    assert "expired" in answers["expired"].json()["error"]["message"]
    assert "not valid yet" in answers["not yet valid"].json()["error"]["message"]
