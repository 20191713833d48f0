"""Whoever reads a signing key's row (the service role may: it signs with the current key) can
sign tokens with it. Such a token is refused once it claims to be valid for longer than a token
lifetime, whatever its `exp`, and no process keeps accepting it from its cache of verified
tokens for longer than that (auth/tokens.py). Once the key is retired, every process hears of it
and refuses what it signs after its retirement, and everything a lifetime later, cached or not
(auth/keyring.py).

Two real server processes over the module's own database, as the service role, with the
shortest token lifetime the settings allow; the keys are read as the service role, as the
attacker would. The tokens are sealed with the tests' audit key, as by an attacker who holds it
too: with the signing key alone, every token is refused outright (tests/test_token_seal.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from auth import keyring, keys, tokens
from auth.service import AuthService
from db.engine import create_engine
from db.models import SIGNING_KEYS
from sinergi.settings import Settings
from tests.support.cli import sinergi
from tests.support.clients import listeners
from tests.support.databases import as_service, run
from tests.support.minted import seal_key, sealed
from tests.support.served import served_process

LIFETIME = 30
"""SINERGI_TOKEN_LIFETIME of the servers: the least it may be."""
TEN_YEARS = 10 * 365 * 86400
QUERY = {"query": "{ viewer { clientId scopes } }"}


def _cli(url: str, *argv: str) -> tuple[int, str]:
    code, out, _ = sinergi(url, *argv)
    return code, out


@pytest.fixture(scope="module")
def servers(module_reference_url: str) -> Iterator[list[str]]:
    """Two uvicorn processes, each listening (a server answers before its listener listens)."""
    service = as_service(module_reference_url)
    settings = {"SINERGI_TOKEN_LIFETIME": str(LIFETIME)}
    with (
        served_process(service, "production", settings) as first,  # makes the signing key
        served_process(service, "production", settings) as second,
    ):
        deadline = time.monotonic() + 30
        while asyncio.run(listeners(module_reference_url)) < 2:
            assert time.monotonic() < deadline, "the servers' listeners never listened"
            time.sleep(0.1)
        yield [first[0], second[0]]


@pytest.fixture(scope="module")
def client(module_reference_url: str) -> tuple[str, str]:
    """A client of the module's own: its id and secret."""
    code, out = _cli(
        module_reference_url, "clients", "create", "--name", "Dinas Uji Kunci",
        "--org-kind", "province", "--jurisdiction", "62", "--purpose", "testing keys", "--json",
    )  # fmt: skip
    assert code == 0, out
    created = json.loads(out)
    return str(created["client_id"]), str(created["client_secret"])


@pytest.fixture(scope="module")
def client_id(client: tuple[str, str]) -> str:
    return client[0]


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
    return jwt.encode(header, sealed({k: v for k, v in payload.items() if v is not None}), key)


def _as_owner(url: str, change: Callable[[AsyncConnection], Awaitable[None]]) -> None:
    async def run() -> None:
        engine = create_engine(url, statement_timeout_ms=10_000, pool_size=1)
        try:
            async with engine.begin() as connection:
                await change(connection)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _rotated(retired_seconds_ago: int) -> Callable[[AsyncConnection], Awaitable[None]]:
    """`keys.rotate`, as `sinergi keys rotate` runs it, with the retirement dated back: the test
    does not wait out the leeway and the lifetime."""

    async def change(connection: AsyncConnection) -> None:
        await keys.rotate(connection)
        await connection.execute(
            update(SIGNING_KEYS)
            .where(SIGNING_KEYS.c.retired_at.is_not(None))
            .values(retired_at=SIGNING_KEYS.c.retired_at - timedelta(seconds=retired_seconds_ago))
        )

    return change


def _eventually(servers: list[str], token: Callable[[], str], status: int) -> None:
    """Every server answers `status` to a token made afresh, within a few seconds."""
    deadline = time.monotonic() + 5
    for base in servers:
        while (answered := _status(base, token())) != status:
            assert time.monotonic() < deadline, f"{base} still answers {answered}"
            time.sleep(0.1)


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
    remembered.add("forged", {"iat": issued, "exp": issued + TEN_YEARS}, kid="k")
    last = issued + LIFETIME + tokens.LEEWAY_SECONDS
    assert remembered.get("forged", now=last) is not None
    assert remembered.get("forged", now=last + 1) is None


def test_a_retired_key_signs_nothing_accepted_after_its_retirement_in_any_process(
    module_reference_url: str, servers: list[str], client_id: str
) -> None:
    """No request names a kid a process does not know, which used to be the only thing that
    made a process read the keys again: the rotation's notification does."""
    leaked = _service_key(module_reference_url)
    for base in servers:
        assert _status(base, _forged(leaked, client_id)) == 200
    retired_ago = tokens.LEEWAY_SECONDS + 5
    _as_owner(module_reference_url, _rotated(retired_ago))
    _eventually(servers, lambda: _forged(leaked, client_id), 401)
    before = int(time.time()) - retired_ago - 1  # issued before the retirement: still in date
    for base in servers:
        assert _status(base, _forged(leaked, client_id, iat=before, exp=before + LIFETIME)) == 200


def test_a_remembered_token_is_refused_once_its_key_stops_verifying_it(
    module_reference_url: str, servers: list[str], client_id: str
) -> None:
    key = _service_key(module_reference_url)
    accepted = _forged(key, client_id)
    for base in servers:
        assert _status(base, accepted) == 200  # now in each process's verified tokens
    _as_owner(module_reference_url, _rotated(LIFETIME + tokens.LEEWAY_SECONDS + 5))
    _eventually(servers, lambda: accepted, 401)


def test_keys_rotate_notifies_every_server(module_reference_url: str) -> None:
    async def rotate_while_listening() -> str:
        heard: asyncio.Queue[str] = asyncio.Queue()
        connection = await asyncpg.connect(as_service(module_reference_url))
        try:
            await connection.add_listener(keys.CHANNEL, lambda *args: heard.put_nowait(args[3]))
            code, out = await asyncio.to_thread(_cli, module_reference_url, "keys", "rotate")
            assert code == 0, out
            return await asyncio.wait_for(heard.get(), 5)
        finally:
            await connection.close()

    assert asyncio.run(rotate_while_listening()) == _service_key(module_reference_url).kid


async def test_a_process_that_hears_nothing_reads_the_keys_again_within_a_while(
    module_reference_url: str, client: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key deleted by hand (to end a leak at once) sends no notification, and a process may
    miss one while its listener is reconnecting."""
    engine = create_engine(module_reference_url, statement_timeout_ms=10_000)
    auth = AuthService(
        engine,
        token_seal_key=seal_key(),
        issuer=Settings().issuer,
        audience=Settings().audience,
        token_lifetime_seconds=LIFETIME,
        failure_limits=Settings().failure_limits,
    )
    try:
        await auth.startup()  # no listener: as one whose listener is away
        client_id, secret = client
        token = await auth.mint_for_client(client_id, secret, address="127.0.0.1")
        assert (await auth.authenticate(token)).principal.client_id == client_id
        kid = tokens.unverified_header(token)["kid"]
        async with engine.begin() as connection:
            await keys.rotate(connection)
            await connection.execute(delete(SIGNING_KEYS).where(SIGNING_KEYS.c.kid == kid))
        assert (await auth.authenticate(token)).principal.client_id == client_id  # remembered
        monkeypatch.setattr(keyring, "REFRESH_SECONDS", 0.1)
        reading = asyncio.create_task(auth.key_ring.run())
        await asyncio.sleep(0.5)
        reading.cancel()
        with pytest.raises(tokens.InvalidToken):
            await auth.authenticate(token)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO signing_keys (kid, private_jwk, public_jwk, retired_at)"
        " VALUES ('planted', '{}', '{}', now() + interval '10 years')",
        "INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at)"
        " VALUES ('planted', '{}', '{}', now() + interval '10 years')",
        # A key beside the signing one, which a rotation running meanwhile missed.
        "INSERT INTO signing_keys (kid, private_jwk, public_jwk) VALUES ('planted', '{}', '{}')",
        "UPDATE signing_keys SET retired_at = NULL",
        "UPDATE signing_keys SET retired_at = now() + interval '10 years'",
        "DELETE FROM signing_keys",
    ],
)
def test_the_service_role_can_neither_add_date_nor_retire_a_key(
    module_reference_url: str, statement: str
) -> None:
    """A retirement dated in the future, a key dated to outrank the signing one, or one added
    while a rotation runs, would outlive rotations; the first start's key is the owner's
    function's to make."""

    async def attempt() -> None:
        connection = await asyncpg.connect(as_service(module_reference_url))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(attempt())


def test_keys_rotate_erases_every_retired_private_key(
    module_reference_url: str, servers: list[str], client_id: str
) -> None:
    """What the service role reads of a retired key after a rotation is its public half."""
    retired = _service_key(module_reference_url)
    code, out = _cli(module_reference_url, "keys", "rotate")
    assert code == 0, out

    async def read() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(as_service(module_reference_url))
        try:
            return await connection.fetch(
                "SELECT kid, private_jwk::text AS private, retired_at IS NULL AS signs"
                " FROM signing_keys"
            )
        finally:
            await connection.close()

    rows = {row["kid"]: row for row in asyncio.run(read())}
    assert not rows[retired.kid]["signs"]
    assert all(json.loads(row["private"]) == {} for row in rows.values() if not row["signs"])
    assert [json.loads(row["private"])["d"] for row in rows.values() if row["signs"]]
    assert _status(servers[0], _forged(_service_key(module_reference_url), client_id)) == 200


def test_the_service_role_makes_no_key_through_the_first_keys_function_while_one_signs(
    module_reference_url: str,
) -> None:
    planted = keys.new_key()

    async def attempt() -> bool:
        connection = await asyncpg.connect(as_service(module_reference_url))
        try:
            made: bool = await connection.fetchval(
                "SELECT make_first_signing_key($1, $2::jsonb, $3::jsonb)",
                planted.kid,
                json.dumps(planted.as_dict(private=True)),
                json.dumps(planted.as_dict(private=False)),
            )
            return made
        finally:
            await connection.close()

    assert asyncio.run(attempt()) is False
    assert not run(module_reference_url, "SELECT FROM signing_keys WHERE kid = $1", planted.kid)


def _plant(connection_url: str, key: ECKey, created_ago_seconds: int = 0) -> None:
    """`key` inserted by hand, as the owner, not retired, dated back."""
    run(
        connection_url,
        "INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at)"
        " VALUES ($1, $2::jsonb, $3::jsonb, now() - make_interval(secs => $4))",
        key.kid,
        json.dumps(key.as_dict(private=True)),
        json.dumps(key.as_dict(private=False)),
        created_ago_seconds,
    )


def _signing(url: str) -> list[str]:
    return [row["kid"] for row in run(url, "SELECT kid FROM signing_keys WHERE retired_at IS NULL")]


def test_a_key_older_than_the_signing_one_verifies_as_retired_when_that_one_was_made(
    module_reference_url: str, servers: list[str], client_id: str
) -> None:
    """Defence in depth: a key nobody retired (added by hand, or missed by a rotation) beside
    the newest does not verify for ever; and the next rotation retires it."""
    lived = LIFETIME + tokens.LEEWAY_SECONDS + 5
    run(
        module_reference_url,
        "UPDATE signing_keys SET created_at = now() - make_interval(secs => $1)"
        " WHERE retired_at IS NULL",
        lived,
    )
    planted = keys.new_key()
    _plant(module_reference_url, planted, created_ago_seconds=2 * lived)
    for base in servers:
        assert _status(base, _forged(planted, client_id)) == 401
    published = httpx.get(f"{servers[0]}/.well-known/jwks.json").json()["keys"]
    assert planted.kid not in {key["kid"] for key in published}
    assert _status(servers[0], _forged(_service_key(module_reference_url), client_id)) == 200

    code, out = _cli(module_reference_url, "keys", "rotate")
    assert code == 0, out
    assert _signing(module_reference_url) == [_service_key(module_reference_url).kid]


async def _waiting_for_a_lock(url: str) -> bool:
    connection = await asyncpg.connect(url)
    try:
        waiting: bool = await connection.fetchval(
            "SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted"
            " AND relation = 'signing_keys'::regclass"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
        )
        return waiting
    finally:
        await connection.close()


def test_keys_rotate_retires_a_key_inserted_while_it_runs(module_reference_url: str) -> None:
    """The reviewer's attack: a key inserted in a transaction still open when the rotation
    retired what it saw was committed after it, unretired. The rotation now waits for it."""
    planted = keys.new_key()

    async def insert_across_a_rotation() -> tuple[int, str]:
        owner = await asyncpg.connect(module_reference_url)
        try:
            async with owner.transaction():
                await owner.execute(
                    "INSERT INTO signing_keys (kid, private_jwk, public_jwk)"
                    " VALUES ($1, $2::jsonb, $3::jsonb)",
                    planted.kid,
                    json.dumps(planted.as_dict(private=True)),
                    json.dumps(planted.as_dict(private=False)),
                )
                rotation = asyncio.create_task(
                    asyncio.to_thread(_cli, module_reference_url, "keys", "rotate")
                )
                deadline = time.monotonic() + 20
                while not rotation.done() and not await _waiting_for_a_lock(module_reference_url):
                    assert time.monotonic() < deadline, "the rotation neither ran nor waited"
                    await asyncio.sleep(0.1)
            return await rotation
        finally:
            await owner.close()

    code, out = asyncio.run(insert_across_a_rotation())
    assert code == 0, out
    assert _signing(module_reference_url) == [_service_key(module_reference_url).kid]
    assert planted.kid not in _signing(module_reference_url)


def test_a_row_that_is_no_key_stops_neither_tokens_nor_a_rotation(
    module_reference_url: str, servers: list[str], client: tuple[str, str]
) -> None:
    """A row of the right shape that does not import (its point is off the curve), newest of
    all: it used to fail every process's read of the keys, so tokens were answered 500 and a
    rotation never reached the processes. A row of the wrong shape the table refuses."""
    client_id, secret = client
    bad = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "zz-bad"}
    run(
        module_reference_url,
        "INSERT INTO signing_keys (kid, private_jwk, public_jwk) VALUES ($1, $2::jsonb, $3::jsonb)",
        "zz-bad",
        json.dumps({**bad, "d": "AAAA"}),
        json.dumps(bad),
    )
    with pytest.raises(asyncpg.CheckViolationError):
        run(
            module_reference_url,
            "INSERT INTO signing_keys(kid, private_jwk, public_jwk)"
            """ VALUES ('zz-bad-shape', '{}', '{"kty": "EC"}')""",
        )
    try:
        for base in servers:
            issued = httpx.post(
                f"{base}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
            assert issued.status_code == 200, issued.text
            assert _status(base, issued.json()["access_token"]) == 200
        leaked = _service_key(module_reference_url)
        assert leaked.kid != "zz-bad"
        _eventually(servers, lambda: _forged(leaked, client_id), 200)
        _as_owner(module_reference_url, _rotated(tokens.LEEWAY_SECONDS + 5))
        _eventually(servers, lambda: _forged(leaked, client_id), 401)
    finally:
        run(module_reference_url, "DELETE FROM signing_keys WHERE kid = 'zz-bad'")


def test_a_transaction_left_open_after_the_first_keys_function_holds_up_no_rotation(
    module_reference_url: str,
) -> None:
    """The reviewer's attack, with the service's credentials: the function, called while a key
    signs, locked the table to the end of the caller's transaction, so `keys rotate` (run to end
    that very leak) and every worker's start-up call waited on it in silence."""
    planted = keys.new_key()
    arguments = (
        planted.kid,
        json.dumps(planted.as_dict(private=True)),
        json.dumps(planted.as_dict(private=False)),
    )
    call = "SELECT make_first_signing_key($1, $2::jsonb, $3::jsonb)"

    async def rotate_while_held() -> tuple[int, str, str]:
        holder = await asyncpg.connect(as_service(module_reference_url))
        starting = await asyncpg.connect(as_service(module_reference_url))
        try:
            async with holder.transaction():
                assert await holder.fetchval(call, *arguments) is False
                await starting.execute("SET lock_timeout = '1s'")  # fails rather than waits
                assert await starting.fetchval(call, *arguments) is False
                return await asyncio.to_thread(sinergi, module_reference_url, "keys", "rotate")
        finally:
            await starting.close()
            await holder.close()

    code, out = _cli(module_reference_url, "keys", "rotate")  # a key signs
    assert code == 0, out
    signing = _signing(module_reference_url)
    code, out, err = asyncio.run(rotate_while_held())
    assert code == 0, out + err
    rotated = _signing(module_reference_url)
    assert len(rotated) == 1
    assert rotated != signing
    assert not run(module_reference_url, "SELECT FROM signing_keys WHERE kid = $1", planted.kid)


def test_a_rotation_held_up_names_who_holds_the_table(module_reference_url: str) -> None:
    """After keys.LOCK_WAIT_SECONDS, rather than waiting on: the operator ends the holder."""

    async def rotate_while_held() -> tuple[int, str, int]:
        holder = await asyncpg.connect(
            module_reference_url, server_settings={"application_name": "kunci-ditahan"}
        )
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE signing_keys IN ROW EXCLUSIVE MODE")
                code, _, err = await asyncio.to_thread(
                    sinergi, module_reference_url, "keys", "rotate"
                )
            pid: int = await holder.fetchval("SELECT pg_backend_pid()")
            return code, err, pid
        finally:
            await holder.close()

    signing = _signing(module_reference_url)
    started = time.monotonic()
    code, err, pid = asyncio.run(rotate_while_held())
    assert code == 2
    assert time.monotonic() - started < keys.LOCK_WAIT_SECONDS + 10
    assert f"pid {pid} " in err, err
    assert "'kunci-ditahan'" in err, err
    assert _signing(module_reference_url) == signing


def test_tokens_wait_for_a_rotation_while_no_row_left_signing_imports(
    module_reference_url: str, servers: list[str], client: tuple[str, str]
) -> None:
    """The only key not retired is a row of a key's shape that does not import: no token can be
    signed, which /oauth/token used to answer 500 INTERNAL; it is an outage the operator's
    rotation ends (a restart does not: a key is not retired, so none is made), and says so."""
    client_id, secret = client
    bad = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "zz-only-bad"}

    def token(base: str) -> httpx.Response:
        return httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )

    run(
        module_reference_url,
        "UPDATE signing_keys SET retired_at = now(), private_jwk = '{}' WHERE retired_at IS NULL",
    )
    run(
        module_reference_url,
        "INSERT INTO signing_keys (kid, private_jwk, public_jwk) VALUES ($1, $2::jsonb, $3::jsonb)",
        "zz-only-bad",
        json.dumps({**bad, "d": "AAAA"}),
        json.dumps(bad),
    )
    try:
        for base in servers:
            refused = token(base)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "temporarily_unavailable"
            assert refused.json()["code"] == "SERVICE_UNAVAILABLE"
            assert refused.headers["Retry-After"] == "30"
    finally:
        code, out = _cli(module_reference_url, "keys", "rotate")
        assert code == 0, out
        run(module_reference_url, "DELETE FROM signing_keys WHERE kid = 'zz-only-bad'")
    for base in servers:
        issued = token(base)
        assert issued.status_code == 200, issued.text
        assert _status(base, issued.json()["access_token"]) == 200
