"""The token endpoint against a client-id hunter and a secret guesser: an unknown client costs
the same scrypt as a wrong secret, and failed attempts are throttled per client id and per
address (counted in PostgreSQL, so every worker shares them)."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

import auth.clients
from auth.clients import create
from db.engine import async_url
from sinergi.app import create_app
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.http import Api


def _register(url: str) -> tuple[str, str]:
    """A client of this test's own, so its lock-out troubles no other test."""

    async def register() -> tuple[str, str]:
        engine = create_async_engine(async_url(url))
        async with engine.begin() as connection:
            client, secret = await create(
                connection,
                name="Throttle probe",
                org_kind="ministry",
                jurisdiction="ID",
                scopes=None,
                purpose="tests the token endpoint's throttle",
                client_id=f"throttle-{secrets.token_hex(4)}",
            )
        await engine.dispose()
        return client.client_id, secret

    return asyncio.run(register())


@pytest.fixture(autouse=True)
def clear_of_a_window_edge() -> None:
    """Failures are counted in fixed windows (of SINERGI_AUTH_FAILURE_WINDOW seconds, from the
    epoch): attempts straddling an edge count in two windows, and the throttle a test expects
    after its Nth does not come. Each test starts with at least 15 s of its window left."""
    window = Settings().auth_failure_window_seconds
    left = window - time.time() % window
    if left < 15:
        time.sleep(left + 0.5)


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hashes the token endpoint checks secrets against, in order."""
    calls: list[str] = []
    real = auth.clients.secret_matches

    def recording(secret: str, stored: str) -> bool:
        calls.append(stored)
        return real(secret, stored)

    monkeypatch.setattr(auth.clients, "secret_matches", recording)
    return calls


def test_an_unknown_client_costs_one_scrypt_like_a_wrong_secret(
    api: Api, demo_url: str, scrypt_calls: list[str]
) -> None:
    client_id, _ = _register(demo_url)
    wrong = api.token_response(client_id, secret="wrong")
    unknown = api.token_response(f"no-such-{secrets.token_hex(4)}", secret="wrong")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert len(scrypt_calls) == 2
    real, dummy = (stored.split("$") for stored in scrypt_calls)
    assert dummy[:4] == real[:4]  # the same algorithm and cost parameters (n, r, p)
    assert len(bytes.fromhex(dummy[5])) == len(bytes.fromhex(real[5]))


def test_a_revoked_client_costs_one_scrypt_too(
    api: Api, demo_url: str, scrypt_calls: list[str]
) -> None:
    client_id, secret = _register(demo_url)

    async def revoke() -> None:
        engine = create_async_engine(async_url(demo_url))
        async with engine.begin() as connection:
            await auth.clients.revoke(connection, client_id)
        await engine.dispose()

    asyncio.run(revoke())
    assert api.token_response(client_id, secret=secret).status_code == 401
    assert len(scrypt_calls) == 1


def test_repeated_wrong_secrets_are_throttled_per_client_id(api: Api, demo_url: str) -> None:
    client_id, secret = _register(demo_url)
    assert api.token_response(client_id, secret=secret).status_code == 200
    answers = [api.token_response(client_id, secret=f"guess-{n}").status_code for n in range(10)]
    assert answers == [401] * 10
    throttled = api.token_response(client_id, secret="guess-10")
    assert throttled.status_code == 429
    body = throttled.json()
    assert (body["error"], body["code"]) == ("rate_limited", "RATE_LIMITED")
    assert int(throttled.headers["retry-after"]) == body["retryAfter"] > 0
    # The right secret waits too: the guesser cannot tell when it has found it.
    assert api.token_response(client_id, secret=secret).status_code == 429
    other, other_secret = _register(demo_url)
    assert api.token_response(other, secret=other_secret).status_code == 200


def test_an_unknown_client_id_is_throttled_like_a_known_one(api: Api) -> None:
    hunted = f"no-such-{secrets.token_hex(4)}"
    answers = [api.token_response(hunted, secret="x").status_code for _ in range(11)]
    assert answers == [401] * 10 + [429]


def test_wrong_secrets_from_one_address_are_throttled_across_client_ids(demo_url: str) -> None:
    settings = Settings(rate_limit=1_000_000, auth_failures_per_address=3)
    app = create_app(settings, database_url=as_service(demo_url))
    client_id, secret = _register(demo_url)
    with (
        TestClient(app, client=("203.0.113.22", 40000)) as guesser,
        TestClient(app, client=("198.51.100.22", 40000)) as neighbour,
    ):
        guessing = Api(guesser)
        answers = [
            guessing.token_response(f"hunt-{secrets.token_hex(4)}", secret="x").status_code
            for _ in range(4)
        ]
        assert answers == [401, 401, 401, 429]
        assert guessing.token_response(client_id, secret=secret).status_code == 429
        assert Api(neighbour).token_response(client_id, secret=secret).status_code == 200
