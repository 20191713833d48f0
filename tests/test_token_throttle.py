"""The token endpoint against a client-id hunter, a secret guesser and a flood: an unknown client
costs the same scrypt as a wrong secret, failed attempts are throttled per client id and per
address (counted in PostgreSQL, so every worker shares them, and before the secret is checked,
so concurrent guesses share them too), and a flood is refused rather than let drain the pool."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

import auth.clients
import auth.keys
import auth.service
import db.queries.auth_failures
from auth.clients import create
from db.engine import async_url
from sinergi.app import create_app
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.http import Api
from tests.support.windows import LONGEST_WINDOW, clear_of_an_edge


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
    clear_of_an_edge(Settings().auth_failure_window_seconds, margin=15)


@pytest.fixture
def years_window() -> int:
    """A window of a year (SINERGI_AUTH_FAILURE_WINDOW's longest), begun at least a minute
    before its end: a test of the token cap, counted in it, straddles no edge however slow
    the machine (in the 15 s of a 300-s window it was sure of, one could). Its rows last
    as long, so a test counting failures in it sends from addresses of its own (`_ipv4`)."""
    clear_of_an_edge(LONGEST_WINDOW, margin=60)
    return LONGEST_WINDOW


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


@pytest.fixture
def slow_scrypt(monkeypatch: pytest.MonkeyPatch, scrypt_calls: list[str]) -> list[str]:
    """Each secret check held up for 0.3 s, so that requests sent together are all in flight at
    once; recorded as `scrypt_calls` records them."""
    recording = auth.clients.secret_matches

    def slow(secret: str, stored: str) -> bool:
        time.sleep(0.3)
        return recording(secret, stored)

    monkeypatch.setattr(auth.clients, "secret_matches", slow)
    return scrypt_calls


def _together(count: int, ask: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(ask, range(count)))


def test_concurrent_wrong_secrets_check_no_more_secrets_than_the_limit(
    demo_url: str, slow_scrypt: list[str]
) -> None:
    """The attack: the count was read before the secret was checked and raised after, so 200
    wrong secrets sent at once all read it under the limit (10) and had 19 checked. Each attempt
    is now counted before its check: the eleventh and later are refused unchecked."""
    # A pool of 14: its 30 requests at once are all let run the throttle's statements (7 at
    # once, 28 waiting), none answered 503 before being counted.
    settings = Settings(rate_limit=1_000_000, secret_checks=64, db_pool_size=14)
    app = create_app(settings, database_url=as_service(demo_url))
    client_id, secret = _register(demo_url)
    with TestClient(app, client=("192.0.2.31", 40000)) as client:
        api = Api(client)
        answers = _together(30, lambda n: api.token_response(client_id, secret=f"guess-{n}"))
        assert Counter(answer.status_code for answer in answers) == {401: 10, 429: 20}
        assert len(slow_scrypt) == 10
        assert api.token_response(client_id, secret=secret).status_code == 429


def test_a_flood_wider_than_the_pool_is_refused_and_graphql_still_answers(
    demo_url: str, slow_scrypt: list[str]
) -> None:
    """The attack: 1,500 token requests at once, with made-up client ids, each held a pooled
    connection through its scrypt; the pool ran dry, 1,319 answered 500 and /graphql 503. Now
    no connection is held during a check, a process checks a bounded number of secrets at once
    with a bounded queue behind them, and refuses the rest at once: 503 with Retry-After."""
    settings = Settings(
        rate_limit=1_000_000, db_pool_size=2, db_pool_timeout_seconds=2, secret_checks=4
    )
    app = create_app(settings, database_url=as_service(demo_url))
    client_id, secret = _register(demo_url)
    with TestClient(app, client=("192.0.2.32", 40000), raise_server_exceptions=False) as client:
        api = Api(client)
        token = api.token_response(client_id, secret=secret).json()["access_token"]
        flood = [f"flood-{secrets.token_hex(4)}" for _ in range(60)]

        def ask(n: int) -> httpx.Response:
            if n % 10 == 5:  # a client of the API, meanwhile
                return api.post({"query": "{ viewer { clientId } }"}, token)
            return api.token_response(flood[n], secret="x")

        answers = _together(len(flood), ask)
    probes = [answers[n] for n in range(len(flood)) if n % 10 == 5]
    assert [probe.status_code for probe in probes] == [200] * len(probes)
    tokens = [answers[n] for n in range(len(flood)) if n % 10 != 5]
    statuses = Counter(answer.status_code for answer in tokens)
    assert set(statuses) == {401, 503}, statuses
    for busy in (answer for answer in tokens if answer.status_code == 503):
        body = busy.json()
        assert (body["error"], body["code"]) == ("temporarily_unavailable", "SERVICE_UNAVAILABLE")
        assert busy.headers["retry-after"] == str(body["retryAfter"]) == "1"
        assert busy.headers["cache-control"] == "no-store"


def test_a_database_outage_met_issuing_a_token_is_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was 500 INTERNAL: the endpoint did not tell an outage (here the pool's timeout, what
    the flood above met) from a bug, as /graphql does."""

    async def pool_timed_out(*_: object) -> None:
        raise exc.TimeoutError("QueuePool limit of size 2 overflow 0 reached, connection timed out")

    monkeypatch.setattr(db.queries.auth_failures, "reserve", pool_timed_out)
    refused = api.token_response("demo-ministry")
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert (body["error"], body["code"]) == ("temporarily_unavailable", "SERVICE_UNAVAILABLE")
    assert refused.headers["retry-after"] == str(body["retryAfter"]) == "5"


def _from_addresses(settings: Settings, demo_url: str) -> Callable[..., Any]:
    """The app, each request coming from the address in its X-Test-Address header (the socket's
    address, as uvicorn gives it, stood in for), so one test client speaks for many addresses."""
    app = create_app(settings, database_url=as_service(demo_url))

    async def addressed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            address = dict(scope["headers"]).get(b"x-test-address")
            if address is not None:
                scope = {**scope, "client": (address.decode(), 40000)}
        await app(scope, receive, send)

    return addressed


def _asker(client: TestClient, client_id: str) -> Callable[[str, str], int]:
    def ask(address: str, secret: str) -> int:
        form = {"grant_type": "client_credentials"}
        headers = {"X-Test-Address": address}
        response = client.post("/oauth/token", data=form, auth=(client_id, secret), headers=headers)
        return response.status_code

    return ask


def test_a_client_locked_out_from_one_address_gets_tokens_from_another(demo_url: str) -> None:
    """The attack: a client id is no secret (audit entries, logs, `viewer.clientId`), and ten
    wrong secrets for it from anywhere refused its owner new tokens for the window. Failures
    now count per client id and address; what the guesser's address is refused (its 429s
    included) does not count against the client from elsewhere."""
    settings = Settings(
        rate_limit=1_000_000, auth_failures_per_client=2, auth_failures_per_client_total=4
    )
    client_id, secret = _register(demo_url)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        ask = _asker(client, client_id)
        guesses = [ask("192.0.2.41", f"guess-{n}") for n in range(7)]
        assert guesses == [401, 401] + [429] * 5
        assert ask("192.0.2.41", secret) == 429
        assert ask("192.0.2.42", secret) == 200


def test_guesses_from_many_addresses_are_bounded_per_client_id(
    demo_url: str, scrypt_calls: list[str]
) -> None:
    """The README's worst case: however many addresses guess, no more than
    SINERGI_AUTH_FAILURES_PER_CLIENT_TOTAL secrets of one client id are checked in a window."""
    settings = Settings(
        rate_limit=1_000_000, auth_failures_per_client=2, auth_failures_per_client_total=4
    )
    client_id, secret = _register(demo_url)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        ask = _asker(client, client_id)
        guesses = [ask(f"192.0.2.{43 + n // 3}", f"guess-{n}") for n in range(9)]
        assert guesses == [401, 401, 429, 401, 401, 429, 429, 429, 429]
        assert len(scrypt_calls) == 4
        assert ask("192.0.2.46", secret) == 429


def test_a_client_id_longer_than_any_registered_one_is_refused_unread(
    api: Api, scrypt_calls: list[str]
) -> None:
    """The attack: a client id of 3,200 random characters made the throttle's row too big for
    its primary key's index: 500, before anything was counted, 11 KB of traceback logged per
    request, for anyone. No client can have an id over 64 characters: it is now answered as an
    unknown id is, without a secret checked or a row written."""
    unknown = api.token_response(f"no-such-{secrets.token_hex(4)}", secret="x")
    scrypt_calls.clear()
    too_long = secrets.token_urlsafe(2400)
    answers = [api.token_response(too_long, secret="x") for _ in range(3)]
    posted = api.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": too_long, "client_secret": "x"},
    )
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.json() == unknown.json()
        assert answer.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    assert (posted.status_code, posted.json()) == (401, unknown.json())
    assert scrypt_calls == []
    assert api.token_response("x" * 64, secret="x").status_code == 401
    assert len(scrypt_calls) == 1  # the longest id a client may have is checked as usual


def test_a_long_forwarded_address_is_counted_like_any_other(demo_url: str) -> None:
    """The attack: the address (a proxy's X-Forwarded-For, whatever its sender wrote) went into
    the throttle's primary key as sent, and one of 3,200 random characters was a 500 for every
    client id. Subjects are stored as their SHA-256, so it is throttled like a short one."""
    settings = Settings(rate_limit=1_000_000, auth_failures_per_client=2)
    client_id, secret = _register(demo_url)
    long_address = secrets.token_urlsafe(2400)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        ask = _asker(client, client_id)
        assert ask(long_address, secret) == 200
        assert [ask(long_address, f"guess-{n}") for n in range(3)] == [401, 401, 429]


def test_guesses_from_a_shared_address_do_not_lock_out_a_client_that_got_tokens_there(
    demo_url: str, scrypt_calls: list[str]
) -> None:
    """The attack: behind a NAT, or a proxy uvicorn does not trust, every caller has one
    address, and failures for any client ids from it refused every client's right secret too:
    anyone could stop token issuance for everyone. A client id that got a token from the
    address lately still has its secret checked there; anyone else stays limited, and guesses
    at that client id from there are still bounded by its own limit."""
    settings = Settings(
        rate_limit=1_000_000, auth_failures_per_address=3, auth_failures_per_client=2
    )
    owner, owner_secret = _register(demo_url)
    newcomer, newcomer_secret = _register(demo_url)
    shared = "192.0.2.51"
    with TestClient(_from_addresses(settings, demo_url)) as client:
        assert _asker(client, owner)(shared, owner_secret) == 200
        hunting = [_asker(client, f"hunt-{secrets.token_hex(4)}")(shared, "x") for _ in range(4)]
        assert hunting == [401, 401, 401, 429]
        assert _asker(client, owner)(shared, owner_secret) == 200
        assert _asker(client, newcomer)(shared, newcomer_secret) == 429
        scrypt_calls.clear()
        guesses = [_asker(client, owner)(shared, f"guess-{n}") for n in range(4)]
        assert guesses == [401, 401, 429, 429]
        assert len(scrypt_calls) == 2


def _slash64() -> str:
    """A /64 of the documentation prefix no other test sends from, as its first four groups."""
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def _ipv4() -> str:
    """An address of the benchmarking range (198.18.0.0/15) no other test sends from."""
    return f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def test_addresses_of_one_ipv6_slash64_share_the_address_limit(demo_url: str) -> None:
    """The attack: the per-address limit counted each IPv6 address apart, and a host given a
    /64 (as hosts commonly are) sent from a new address whenever one was refused: its guesses
    had no limit, and could keep every secret check busy, so everyone got 503. An IPv6 address
    now counts under its /64; another /64 has its own count."""
    settings = Settings(rate_limit=1_000_000, auth_failures_per_address=3)
    net, other_net = _slash64(), _slash64()
    with TestClient(_from_addresses(settings, demo_url)) as client:

        def hunt(sender: str) -> int:
            return _asker(client, f"hunt-{secrets.token_hex(4)}")(sender, "x")

        assert [hunt(f"{net}::1") for _ in range(3)] == [401, 401, 401]
        assert hunt(f"{net}::2") == 429
        assert hunt(f"{net}:ffff:ffff:ffff:ffff") == 429
        assert hunt(f"{other_net}::1") == 401


def test_a_client_id_from_one_address_of_a_slash64_is_still_counted_by_that_address(
    demo_url: str,
) -> None:
    """Only the address's own limit counts the /64 as one: a client id locked out of one
    address by guesses at it there still gets a token from its owner's address beside it."""
    settings = Settings(
        rate_limit=1_000_000, auth_failures_per_address=3, auth_failures_per_client=2
    )
    client_id, secret = _register(demo_url)
    net = _slash64()
    with TestClient(_from_addresses(settings, demo_url)) as client:
        ask = _asker(client, client_id)
        assert [ask(f"{net}::1", f"guess-{n}") for n in range(3)] == [401, 401, 429]
        assert ask(f"{net}::2", secret) == 200


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(demo_url: str) -> None:
    """A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d: counted as that IPv4 address,
    it shares the IPv4 caller's count, and not one with all of IPv4 (whose mapped addresses
    lie in a single /64)."""
    settings = Settings(rate_limit=1_000_000, auth_failures_per_address=3)
    address, other = _ipv4(), _ipv4()
    while other == address:
        other = _ipv4()
    with TestClient(_from_addresses(settings, demo_url)) as client:

        def hunt(sender: str) -> int:
            return _asker(client, f"hunt-{secrets.token_hex(4)}")(sender, "x")

        assert [hunt(f"::ffff:{address}") for _ in range(3)] == [401, 401, 401]
        assert hunt(address) == 429
        assert hunt(f"::ffff:{other}") == 401


def test_guesses_from_many_addresses_do_not_lock_out_a_client_from_its_own(
    demo_url: str, scrypt_calls: list[str]
) -> None:
    """The attack: 110 wrong secrets over 11 addresses reached the client id's total and locked
    its owner out everywhere for the window. The owner's address, where it got a token lately,
    still has its secret checked; a new address, like the guessers', does not."""
    settings = Settings(
        rate_limit=1_000_000, auth_failures_per_client=2, auth_failures_per_client_total=4
    )
    client_id, secret = _register(demo_url)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        ask = _asker(client, client_id)
        assert ask("192.0.2.61", secret) == 200
        scrypt_calls.clear()
        guesses = [ask(f"192.0.2.{62 + n // 3}", f"guess-{n}") for n in range(9)]
        assert guesses == [401, 401, 429, 401, 401, 429, 429, 429, 429]
        assert len(scrypt_calls) == 4
        assert ask("192.0.2.61", secret) == 200
        assert ask("192.0.2.65", secret) == 429


def _rows(url: str, statement: str, **parameters: object) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(async_url(url))
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), parameters)
            rows = list(result.all()) if result.returns_rows else []
        await engine.dispose()
        return rows

    return asyncio.run(run())


def _aged_row(url: str, subject: str, days: float) -> None:
    """A throttle row of a window that began `days` ago."""
    _rows(
        url,
        "INSERT INTO auth_failures (subject, window_start, failures)"
        " VALUES (:subject, clock_timestamp() - make_interval(secs => :seconds), 1)",
        subject=subject,
        seconds=days * 86_400,
    )


def _aged_row_kept(url: str, subject: str) -> bool:
    """Whether a row of the subject's from a window that began over a day ago is still there."""
    statement = (
        "SELECT 1 FROM auth_failures"
        " WHERE subject = :subject AND window_start < clock_timestamp() - interval '1 day'"
    )
    return bool(_rows(url, statement, subject=subject))


def test_successes_alone_clear_away_old_rows(
    demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leak: every window in which a client got a token leaves a row, and old rows were
    cleared only after a failed attempt: a deployment seldom seeing a wrong secret kept them
    all. A success now clears them too, as often (here always)."""
    monkeypatch.setattr(auth.service.random, "random", lambda: 0.0)
    stale = f"stale-{secrets.token_hex(8)}"
    _aged_row(demo_url, stale, days=2)
    assert _aged_row_kept(demo_url, stale)
    client_id, secret = _register(demo_url)
    with TestClient(_from_addresses(Settings(rate_limit=1_000_000), demo_url)) as client:
        assert _asker(client, client_id)("192.0.2.81", secret) == 200
    assert not _aged_row_kept(demo_url, stale)


def test_a_success_is_remembered_for_as_long_as_a_token_lasts(
    demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With tokens lasting over a day, a success is remembered longer than the day old rows
    were kept for: clearing them forgot a client that renews its token as it expires, and
    guesses from its address locked it out. Rows are now kept as long as they are read."""
    monkeypatch.setattr(auth.service.random, "random", lambda: 0.0)
    settings = Settings(
        rate_limit=1_000_000, token_lifetime_seconds=3 * 86_400, auth_failures_per_address=1
    )
    client_id, secret = _register(demo_url)
    shared = "192.0.2.82"
    success = db.queries.auth_failures.Attempt(client_id, shared).success_subject()
    _aged_row(demo_url, success, days=2)
    stale = f"stale-{secrets.token_hex(8)}"
    _aged_row(demo_url, stale, days=4)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        hunting = [_asker(client, f"hunt-{secrets.token_hex(4)}")(shared, "x") for _ in range(2)]
        assert hunting == [401, 429]
        assert _asker(client, client_id)(shared, secret) == 200
    assert _aged_row_kept(demo_url, success)
    assert not _aged_row_kept(demo_url, stale)


def _flooded(demo_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app, and a flooder: a client whose secret checks are held until released, so that
    its requests stay in flight for as long as the test needs, whatever the machine's speed."""
    flooder, flooder_secret = _register(demo_url)
    other, other_secret = _register(demo_url)
    app = create_app(settings, database_url=as_service(demo_url))
    release = threading.Event()
    held: list[str] = []
    real = auth.clients.secret_matches

    def held_for_the_flooder(secret: str, stored: str) -> bool:
        if secret == flooder_secret:
            held.append(stored)
            release.wait(timeout=30)
        return real(secret, stored)

    monkeypatch.setattr(auth.clients, "secret_matches", held_for_the_flooder)
    return app, (flooder, flooder_secret), (other, other_secret), release, held


def test_a_client_flooding_with_its_right_secret_does_not_stop_another_clients_tokens(
    demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: one client kept 30 token requests with its right secret in flight; every
    request took a turn of the process's secret checks before anything else, so the flood held
    them all and another client's requests were answered 503. Now a client id has at most two
    secrets checked at once in a process, with a bounded queue of its own: the flood holds two
    of the process's turns (here three), and the other client gets the third."""
    # A pool of 14: the flood's 30 requests at once are all let run the throttle's statements
    # (7 at once, 28 waiting), so any refusal is its client id's queue's.
    settings = Settings(rate_limit=1_000_000, secret_checks=3, db_pool_size=14)
    app, flooder, other, release, held = _flooded(demo_url, settings, monkeypatch)
    with TestClient(app, client=("192.0.2.91", 40000)) as client:
        api = Api(client)
        answered: list[int] = []

        def flood(_: int) -> None:
            answered.append(api.token_response(flooder[0], secret=flooder[1]).status_code)

        with ThreadPoolExecutor(max_workers=30) as pool:
            for n in range(30):
                pool.submit(flood, n)
            # Every request the process turns away is answered at once; the rest are in flight.
            deadline = time.monotonic() + 30
            while (len(answered) < 15 or len(held) < 2) and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                asked = api.token_response(other[0], secret=other[1])
                most_held = len(held)
            finally:
                release.set()
    assert asked.status_code == 200, asked.text
    assert most_held == 2
    assert set(answered) <= {200, 429}, answered


def test_tokens_issued_to_one_client_are_capped_per_window(
    demo_url: str, scrypt_calls: list[str], years_window: int
) -> None:
    """Each token costs a scrypt, and nothing bounded how many one client was issued: past
    SINERGI_TOKENS_PER_CLIENT in a window it is now refused (429) without checking the secret,
    and other clients still get theirs."""
    settings = Settings(
        rate_limit=1_000_000, tokens_per_client=2, auth_failure_window_seconds=years_window
    )
    client_id, secret = _register(demo_url)
    other, other_secret = _register(demo_url)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        ask = _asker(client, client_id)
        assert [ask("192.0.2.92", secret), ask("192.0.2.93", secret)] == [200, 200]
        checked = len(scrypt_calls)
        refused = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert refused.status_code == 429
        body = refused.json()
        assert (body["error"], body["code"]) == ("rate_limited", "RATE_LIMITED")
        assert body["error_description"].startswith("too many token requests; retry in")
        assert len(scrypt_calls) == checked
        assert _asker(client, other)("192.0.2.92", other_secret) == 200


def _shape(answer: httpx.Response) -> tuple[int, dict[str, Any], list[str]]:
    """An answer's status, body and header names, its seconds left in the window left out."""
    body = {key: value for key, value in answer.json().items() if key != "retryAfter"}
    body["error_description"] = re.sub(r"\d+", "N", body["error_description"])
    return answer.status_code, body, sorted(answer.headers.keys())


def test_a_capped_client_is_refused_as_a_throttled_unknown_id_is(
    demo_url: str, years_window: int
) -> None:
    """The oracle: past its token cap, anyone sending only a client id was told "this client was
    issued 300 tokens" before any secret was checked, while an unknown id got 401: the answer
    said the id was a client's, and an active one. It now reads as any throttled id's does,
    and an unknown id's failures reach that answer too."""
    settings = Settings(
        rate_limit=1_000_000,
        tokens_per_client=1,
        auth_failures_per_client=1,
        auth_failure_window_seconds=years_window,
    )
    client_id, secret = _register(demo_url)
    with TestClient(_from_addresses(settings, demo_url)) as client:
        assert _asker(client, client_id)(_ipv4(), secret) == 200
        form = {"grant_type": "client_credentials"}
        headers = {"X-Test-Address": _ipv4()}

        def probe(probed: str) -> httpx.Response:
            return client.post("/oauth/token", data=form, auth=(probed, "x"), headers=headers)

        capped = probe(client_id)
        unknown = f"no-such-{secrets.token_hex(4)}"
        assert probe(unknown).status_code == 401
        throttled = probe(unknown)
    assert capped.status_code == throttled.status_code == 429, capped.text
    assert _shape(capped) == _shape(throttled)
    assert capped.json()["error_description"].startswith("too many token requests; retry in")


def test_a_right_secret_counts_against_the_cap_whatever_follows(
    demo_url: str, monkeypatch: pytest.MonkeyPatch, scrypt_calls: list[str], years_window: int
) -> None:
    """The attack: only a token signed counted against the cap, so a client asking with its
    right secret for a scope refused it (invalid_scope), or while no key could sign (503), cost
    a scrypt each time and was never refused: 450 such requests got 450 answers and no 429,
    past a cap meant to bound the scrypts of a client asking again and again with its right
    secret. Every right secret counts now, whatever follows its check."""
    settings = Settings(
        rate_limit=1_000_000, tokens_per_client=3, auth_failure_window_seconds=years_window
    )
    client_id, secret = _register(demo_url)
    real = auth.keys.signing_key
    outage = False

    async def signing_key(connection: Any) -> Any:
        if outage:
            raise auth.keys.NoSigningKey("no usable key (the test's outage)")
        return await real(connection)

    monkeypatch.setattr(auth.keys, "signing_key", signing_key)
    address = _ipv4()
    with TestClient(_from_addresses(settings, demo_url)) as client:
        headers = {"X-Test-Address": address}
        for scope in ("pii:read", "records:read"):  # each beyond a ministry's bundle
            form = {"grant_type": "client_credentials", "scope": scope}
            refused = client.post(
                "/oauth/token", data=form, auth=(client_id, secret), headers=headers
            )
            assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
        ask = _asker(client, client_id)
        outage = True
        assert ask(address, secret) == 503
        outage = False
        checked = len(scrypt_calls)
        assert ask(address, secret) == 429
        assert len(scrypt_calls) == checked


def test_token_requests_take_at_most_half_the_pool_for_the_throttles_statements(
    demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flood: every token request ran the throttle's statements (reserve, its counts, the
    client's row) on the pool /graphql shares before any turn was taken, however many came at
    once. A process now lets as many requests run them at once as half its pool (here one),
    four times as many wait, and answers any more 503 at once, before any statement."""
    settings = Settings(rate_limit=1_000_000, db_pool_size=2)
    app = create_app(settings, database_url=as_service(demo_url))
    release = threading.Event()
    entered: list[str] = []
    real = db.queries.auth_failures.reserve

    async def held(connection: Any, attempt: Any, window_seconds: int) -> Any:
        entered.append(attempt.client)
        await asyncio.to_thread(release.wait, 30)
        return await real(connection, attempt, window_seconds)

    monkeypatch.setattr(db.queries.auth_failures, "reserve", held)
    answers: list[httpx.Response] = []
    with TestClient(app, client=(_ipv4(), 40000)) as client:
        api = Api(client)

        def ask(_: int) -> None:
            answers.append(api.token_response(f"hunt-{secrets.token_hex(4)}", secret="x"))

        with ThreadPoolExecutor(max_workers=12) as pool:
            for n in range(12):
                pool.submit(ask, n)
            deadline = time.monotonic() + 30
            while len(answers) < 7 and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                early, running = list(answers), len(entered)
            finally:
                release.set()
    assert running == 1
    assert [answer.status_code for answer in early] == [503] * 7
    body = early[0].json()
    assert (body["error"], early[0].headers["retry-after"]) == ("temporarily_unavailable", "1")
    assert sorted(answer.status_code for answer in answers) == [401] * 5 + [503] * 7


@pytest.mark.parametrize(
    "browser",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame's, or a redirected form's
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a page of another port or subdomain
    ],
)
def test_a_web_page_cannot_lock_a_client_out_of_its_address(
    demo_url: str, scrypt_calls: list[str], browser: dict[str, str]
) -> None:
    """Any page the operator visits can post a form to /oauth/token at 127.0.0.1 or an intranet
    address, cross-site and without a preflight: its wrong secrets were counted against that
    address, and ten locked the real holder there out. A client-credentials client is a server,
    which sends neither Origin nor Sec-Fetch-Site: a request with either naming a page is
    refused before anything is counted or checked."""
    settings = Settings(rate_limit=1_000_000)
    app = create_app(settings, database_url=as_service(demo_url))
    client_id, secret = _register(demo_url)
    with TestClient(app, client=("192.0.2.47", 40000)) as client:
        form = {"grant_type": "client_credentials", "client_id": client_id}
        for guess in range(12):
            refused = client.post(
                "/oauth/token", data={**form, "client_secret": f"guess-{guess}"}, headers=browser
            )
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "access_denied"
            assert refused.headers["cache-control"] == "no-store"
        assert scrypt_calls == []
        user_opened = {"Sec-Fetch-Site": "none"}  # typed into the address bar: no page sent it
        issued = client.post(
            "/oauth/token", data={**form, "client_secret": secret}, headers=user_opened
        )
        assert issued.status_code == 200, issued.text
