"""Whoever reads a signing key's row (the service role may: it signs with the current key) can
sign tokens with it. Such a token is refused once it claims to be valid for longer than a token
lifetime, whatever its `exp`, and no process keeps accepting it from its cache of verified
tokens for longer than that (auth/tokens.py).

Two real server processes over the module's own database, as the service role, with the
shortest token lifetime the settings allow; the keys are read as the service role, as the
attacker would."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from auth import keys, tokens
from db.engine import create_engine
from sinergi.cli import main
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.served import served_process

LIFETIME = 30
"""SINERGI_TOKEN_LIFETIME of the servers: the least it may be."""
TEN_YEARS = 10 * 365 * 86400
QUERY = {"query": "{ viewer { clientId scopes } }"}


def _cli(url: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def servers(module_reference_url: str) -> Iterator[list[str]]:
    service = as_service(module_reference_url)
    settings = {"SINERGI_TOKEN_LIFETIME": str(LIFETIME)}
    with (
        served_process(service, "production", settings) as first,  # makes the signing key
        served_process(service, "production", settings) as second,
    ):
        yield [first[0], second[0]]


@pytest.fixture(scope="module")
def client_id(module_reference_url: str) -> str:
    code, out = _cli(
        module_reference_url, "clients", "create", "--name", "Dinas Uji Kunci",
        "--org-kind", "province", "--jurisdiction", "62", "--purpose", "testing keys", "--json",
    )  # fmt: skip
    assert code == 0, out
    return str(json.loads(out)["client_id"])


def _service_key(url: str) -> ECKey:
    """The current signing key, read as the service role reads it to sign."""

    async def read() -> ECKey:
        engine = create_engine(as_service(url), statement_timeout_ms=10_000, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await keys.signing_key(connection)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _forged(key: ECKey, client_id: str, *, lifetime: int = LIFETIME, **claims: Any) -> str:
    issued = int(time.time())
    payload = {
        "iss": Settings().issuer,
        "aud": Settings().audience,
        "sub": client_id,
        "client_id": client_id,
        "iat": issued,
        "exp": issued + lifetime,
        "scope": "aggregates:read pii:read records:read",
        "jurisdiction": "62",
        "org_kind": "province",
        **claims,
    }
    header = {"alg": "ES256", "kid": key.kid, "typ": tokens.TOKEN_TYPE}
    return jwt.encode(header, {k: v for k, v in payload.items() if v is not None}, key)


def _status(base: str, token: str) -> int:
    answer = httpx.post(f"{base}/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


def test_a_token_valid_for_longer_than_the_lifetime_is_refused_though_validly_signed(
    module_reference_url: str, servers: list[str], client_id: str
) -> None:
    key = _service_key(module_reference_url)
    for base in servers:
        assert _status(base, _forged(key, client_id)) == 200
        assert _status(base, _forged(key, client_id, lifetime=TEN_YEARS)) == 401
        assert _status(base, _forged(key, client_id, lifetime=LIFETIME + 60)) == 401
        assert _status(base, _forged(key, client_id, iat=None)) == 401


def test_a_verified_token_is_remembered_no_longer_than_a_lifetime_after_it_was_issued() -> None:
    """What a forged token signed before the check was added, or a cache without it, kept."""
    remembered = tokens.VerifiedTokens(lifetime=LIFETIME)
    issued = 1_000_000.0
    remembered.add("forged", {"iat": issued, "exp": issued + TEN_YEARS})
    last = issued + LIFETIME + tokens.LEEWAY_SECONDS
    assert remembered.get("forged", now=last) is not None
    assert remembered.get("forged", now=last + 1) is None
