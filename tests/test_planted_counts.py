"""Counts planted by whoever holds the service's database credentials. The service's role writes
`rate_limit_windows` and `auth_failures` (every process adds its counts there), and nothing held
what it wrote: a client's count planted at 2147483647 overflowed the next addition, so that
every request of that client answered 500, the limiter's sync failed for every client while
that one had counts pending, and /oauth/token answered the right secret 500; planted at
-2000000000 it lifted the client's limit. Rows naming windows yet to come outlived a rotation
of the credentials. Now the additions saturate, a negative count is refused by the database
(migration 0063), and a purge drops rows of windows to come."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient

from db.engine import autocommit, create_engine
from db.queries import auth_failures, rate_limits
from sinergi.app import create_app
from sinergi.rate_limit import RateLimiter
from sinergi.settings import Settings
from tests.support.clients import registered
from tests.support.databases import as_service, fetched
from tests.support.databases import run as sql
from tests.support.http import Api, served
from tests.support.windows import clear_of_an_edge

MOST = 2**31 - 1
"""PostgreSQL's largest integer: what an insider plants to overflow an addition."""
LIMIT = 20
WINDOW_SECONDS = 86400
"""A day: no test here straddles a window's edge (`clear_of_an_edge` waits one out)."""

PLANT_HITS = """
    INSERT INTO rate_limit_windows (client_id, window_start, hits)
    VALUES ($1, to_timestamp($2::bigint * $3::bigint), $4)
    ON CONFLICT (client_id, window_start) DO UPDATE SET hits = EXCLUDED.hits
"""
"""A client's count in the window of index $2 (its start ÷ its length $3), as the service's
role may write it."""
PLANT_FAILURES = """
    INSERT INTO auth_failures (subject, window_start, failures)
    VALUES ($1, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2
                             + $3::bigint * $2), $4)
    ON CONFLICT (subject, window_start) DO UPDATE SET failures = EXCLUDED.failures
"""
"""A subject's failures in the window $3 windows (of $2 seconds) from the current one, by the
database's clock, as the token endpoint counts them."""


COUNTED = "SELECT client_id, hits FROM rate_limit_windows WHERE client_id = ANY($1)"


def _client(url: str) -> tuple[str, str]:
    """A client of the test's own: its id and secret."""
    return registered(url, "Planted count probe", purpose="planted counts", scopes="records:read")


def _index() -> int:
    """The current window's index, as the rate limiter reads it."""
    return int(time.time() // WINDOW_SECONDS)


def _ask(api: Api, token: str) -> Any:
    return api.post({"query": "{ __typename }"}, token)


@pytest.fixture
def limited(own_reference_url: str) -> Iterator[Api]:
    """The app over the test's own database, with a limit of LIMIT requests a day."""
    clear_of_an_edge(WINDOW_SECONDS, margin=60)
    settings = Settings(rate_limit=LIMIT, rate_limit_window_seconds=WINDOW_SECONDS)
    with served(own_reference_url, settings) as api:
        yield api


def test_a_client_planted_at_the_largest_count_is_over_its_limit_not_failing(
    own_reference_url: str, limited: Api
) -> None:
    """Its requests are refused 429 as a client over its limit is, not 500 INTERNAL, and
    another client's are answered."""
    planted, planted_secret = _client(own_reference_url)
    other, other_secret = _client(own_reference_url)
    tokens = {
        client_id: limited.token_response(client_id, secret).json()["access_token"]
        for client_id, secret in ((planted, planted_secret), (other, other_secret))
    }
    service = as_service(own_reference_url)
    sql(service, PLANT_HITS, planted, _index(), WINDOW_SECONDS, MOST)
    for _ in range(3):
        refused = _ask(limited, tokens[planted])
        assert refused.status_code == 429, refused.text
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
    answers = [_ask(limited, tokens[other]).status_code for _ in range(5)]
    assert answers == [200] * 5
    (row,) = sql(service, COUNTED, [planted])
    assert row["hits"] == MOST


def test_the_sync_of_every_client_goes_on_past_one_planted_at_the_largest_count(
    fresh_url: str,
) -> None:
    """One process's sync adds all its clients' pending counts in one statement: a client
    planted at the largest count while it had counts pending made every sync fail, and no
    other client's count reached PostgreSQL (nor the other processes) until it went."""
    clear_of_an_edge(WINDOW_SECONDS, margin=60)
    planted, other = f"planted-{uuid.uuid4().hex}", f"other-{uuid.uuid4().hex}"
    service = as_service(fresh_url)
    now = time.time()  # held still: every request after the first is counted in memory
    limiter = RateLimiter(per_window=200, window_seconds=WINDOW_SECONDS, clock=lambda: now)

    async def requests() -> None:
        engine = create_engine(service, statement_timeout_ms=10_000)
        primary = autocommit(engine)
        try:
            for client_id in (planted, other):
                admitted = [await limiter.admit(primary, client_id) for _ in range(2)]
                assert admitted == [None, None]  # the first counted in PostgreSQL, one pending
            await fetched(service, PLANT_HITS, planted, _index(), WINDOW_SECONDS, MOST)
            await limiter.sync(primary)
            rows = await fetched(service, COUNTED, [planted, other])
            assert {row["client_id"]: row["hits"] for row in rows} == {planted: MOST, other: 2}
            refusal = await limiter.admit(primary, planted)
            assert refusal is not None
            assert refusal.status_code == 429
            assert await limiter.admit(primary, other) is None
        finally:
            await engine.dispose()

    asyncio.run(requests())


def test_a_negative_count_is_refused_by_the_database(fresh_url: str) -> None:
    """A count of -2000000000 let 100 requests of 100 through at a limit of 20."""
    service = as_service(fresh_url)
    client_id = f"planted-{uuid.uuid4().hex}"
    with pytest.raises(asyncpg.CheckViolationError):
        sql(service, PLANT_HITS, client_id, _index(), WINDOW_SECONDS, -2_000_000_000)
    sql(service, PLANT_HITS, client_id, _index(), WINDOW_SECONDS, 1)
    with pytest.raises(asyncpg.CheckViolationError):
        sql(service, "UPDATE rate_limit_windows SET hits = -1 WHERE client_id = $1", client_id)
    subject = auth_failures.Attempt(client_id, "192.0.2.7").subjects()["client"]
    with pytest.raises(asyncpg.CheckViolationError):
        sql(service, PLANT_FAILURES, subject, 300, 0, -1)


def test_a_client_planted_at_the_largest_failure_count_is_answered_as_documented(
    own_reference_url: str,
) -> None:
    """Past the client id's total (SINERGI_AUTH_FAILURES_PER_CLIENT_TOTAL), an address the
    client got a token from lately still has its secret checked; any other is refused 429. A
    total planted at the largest count answered both 500, the right secret too."""
    settings = Settings(rate_limit=1_000_000)
    window = settings.auth_failure_window_seconds
    clear_of_an_edge(window, margin=15)
    client_id, secret = _client(own_reference_url)
    own, elsewhere = "192.0.2.71", "198.51.100.71"
    app = create_app(settings, database_url=as_service(own_reference_url))
    with (
        TestClient(app, client=(own, 40000)) as owner,
        TestClient(app, client=(elsewhere, 40000)) as stranger,
    ):
        assert Api(owner).token_response(client_id, secret).status_code == 200
        total = auth_failures.Attempt(client_id, own).subjects()["client"]
        sql(as_service(own_reference_url), PLANT_FAILURES, total, window, 0, MOST)
        issued = Api(owner).token_response(client_id, secret)
        assert issued.status_code == 200, issued.text
        assert "access_token" in issued.json()
        refused = Api(stranger).token_response(client_id, secret)
        assert refused.status_code == 429, refused.text
        assert (refused.json()["error"], refused.json()["code"]) == ("rate_limited", "RATE_LIMITED")


def test_a_purge_drops_counts_planted_for_windows_to_come(fresh_url: str) -> None:
    """No process counts a window that has not begun (a request's, by a server's clock, at most
    CLOCK_SKEW_SECONDS ahead of the database's; a failure's, by the database's): a row planted
    there refused its client once the window came, whatever credentials the service had by
    then. The tolerance is the skew, not a window: tomorrow's row of a daily window is dropped,
    and a count of a window of two seconds that a server ahead has begun is kept."""
    skew = rate_limits.CLOCK_SKEW_SECONDS
    clear_of_an_edge(WINDOW_SECONDS, margin=skew + 60)  # tomorrow is over the skew ahead
    service = as_service(fresh_url)
    client_id, brief = f"planted-{uuid.uuid4().hex}", f"brief-{uuid.uuid4().hex}"
    for ahead in (0, 1, 2, 30):
        sql(service, PLANT_HITS, client_id, _index() + ahead, WINDOW_SECONDS, MOST)
    short = 2
    now = int(time.time() // short)
    for ahead in (0, 1, skew // short // 2, skew // short * 4):  # now, +2 s, +30 s, +4 min
        sql(service, PLANT_HITS, brief, now + ahead, short, 1)
    subject = auth_failures.Attempt(client_id, "192.0.2.72").subjects()["client"]
    for ahead in (0, 1, 1000):
        sql(service, PLANT_FAILURES, subject, 300, ahead, MOST)

    async def purge() -> None:
        engine = create_engine(service, statement_timeout_ms=10_000)
        primary = autocommit(engine)
        try:
            await RateLimiter(per_window=LIMIT, window_seconds=WINDOW_SECONDS).purge(primary)
            async with primary.connect() as connection:
                await auth_failures.purge(connection, 86_400)
        finally:
            await engine.dispose()

    asyncio.run(purge())
    windows = sql(
        service,
        "SELECT (extract(epoch FROM window_start) / $2)::bigint AS at FROM rate_limit_windows"
        " WHERE client_id = $1 ORDER BY window_start",
        client_id,
        WINDOW_SECONDS,
    )
    assert [row["at"] - _index() for row in windows] == [0]
    kept = sql(
        service,
        "SELECT (extract(epoch FROM window_start) / $2)::bigint AS at FROM rate_limit_windows"
        " WHERE client_id = $1 ORDER BY window_start",
        brief,
        short,
    )
    assert [row["at"] - now for row in kept] == [0, 1, skew // short // 2]
    failures = sql(service, "SELECT count(*) FROM auth_failures WHERE subject = $1", subject)
    assert failures[0]["count"] == 1


def test_a_success_planted_at_the_largest_count_leaves_the_right_secret_a_token(
    own_reference_url: str,
) -> None:
    """A client id's success from an address is counted as the failures are (`succeeded`):
    planted at the largest count, its addition overflowed, and the right secret from that
    address was answered 500."""
    settings = Settings(rate_limit=1_000_000)
    window = settings.auth_failure_window_seconds
    clear_of_an_edge(window, margin=15)
    client_id, secret = _client(own_reference_url)
    own = "192.0.2.73"
    success = auth_failures.Attempt(client_id, own).success_subject()
    sql(as_service(own_reference_url), PLANT_FAILURES, success, window, 0, MOST)
    app = create_app(settings, database_url=as_service(own_reference_url))
    with TestClient(app, client=(own, 40000)) as owner:
        issued = Api(owner).token_response(client_id, secret)
        assert issued.status_code == 200, issued.text
        assert "access_token" in issued.json()
    (row,) = sql(
        as_service(own_reference_url),
        "SELECT failures FROM auth_failures WHERE subject = $1",
        success,
    )
    assert row["failures"] == MOST


def test_a_take_back_of_counts_planted_at_zero_leaves_them_at_zero(fresh_url: str) -> None:
    """A take-back stops at zero: an attempt whose counts were planted at 0 between its
    reservation and its take-back (the purge, or whoever holds the service's credentials, may
    delete or rewrite them) would have been taken below zero, which the database refuses."""
    service = as_service(fresh_url)
    window = 300
    clear_of_an_edge(window, margin=15)
    attempt = auth_failures.Attempt(f"planted-{uuid.uuid4().hex}", "192.0.2.74")
    subjects = list(attempt.subjects().values())
    for subject in subjects:
        sql(service, PLANT_FAILURES, subject, window, 0, 0)
    (planted,) = sql(
        service, "SELECT DISTINCT window_start FROM auth_failures WHERE subject = ANY($1)", subjects
    )
    reservation = auth_failures.Reservation(
        attempt,
        planted["window_start"],
        by_client_address=0,
        by_client=0,
        by_address=0,
        seconds_left=float(window),
    )

    async def take_back() -> None:
        engine = create_engine(service, statement_timeout_ms=10_000)
        try:
            async with autocommit(engine).connect() as connection:
                await auth_failures.take_back(connection, reservation)
        finally:
            await engine.dispose()

    asyncio.run(take_back())
    counts = sql(service, "SELECT failures FROM auth_failures WHERE subject = ANY($1)", subjects)
    assert [row["failures"] for row in counts] == [0, 0, 0]
