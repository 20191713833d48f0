"""Two real server processes count one client's requests together: the limit lives in PostgreSQL,
so adding workers or machines does not multiply what a client may send. Each process counts in
memory and adds its counts to PostgreSQL every tenth of a second (sinergi/rate_limit.py), and
holds client registrations until PostgreSQL notifies a change (auth/registry.py): a revocation
reaches both processes before the client's next request."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from auth import clients
from auth.registry import forgotten
from db.engine import autocommit, create_engine
from db.notifications import libpq_url
from sinergi.rate_limit import SYNC_SECONDS, RateLimiter
from tests.support.databases import as_service
from tests.support.served import DEMO_SERVED, free_port, uvicorn_command, wait_until_answering
from tests.support.windows import clear_of_an_edge

LIMIT = 5
WINDOW_SECONDS = 86400
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def servers(demo_url: str) -> Iterator[list[str]]:
    """Two uvicorn processes over one database, as the service role, stopped however the test
    ends; begun at least two minutes before the day's window ends, which the module's tests
    do not outlast."""
    clear_of_an_edge(WINDOW_SECONDS, margin=120)
    env = {
        **os.environ,
        "DATABASE_URL": as_service(demo_url),
        "SINERGI_ENV": "production",
        **DEMO_SERVED,
        "SINERGI_RATE_LIMIT": str(LIMIT),
        # A long window: the test does not straddle a window boundary but once in hours.
        "SINERGI_RATE_LIMIT_WINDOW": str(WINDOW_SECONDS),
    }
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for _ in range(2):
            port = free_port()
            process = subprocess.Popen(
                uvicorn_command(port, env),
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            bases.append(f"http://127.0.0.1:{port}")
            # One at a time: the first creates the signing key.
            wait_until_answering(process, f"{bases[-1]}/healthz", seconds=60)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


def _register(url: str, org_kind: str = "ministry", jurisdiction: str = "ID") -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        engine = create_engine(url, statement_timeout_ms=10_000)
        try:
            async with engine.begin() as connection:
                client, secret = await clients.create(
                    connection,
                    name="Rate-limited test client",
                    org_kind=org_kind,
                    jurisdiction=jurisdiction,
                    scopes=None,
                    purpose="testing shared rate limits",
                )
        finally:
            await engine.dispose()
        return client.client_id, secret

    return asyncio.run(go())


def _revoke(url: str, client_id: str) -> None:
    """As `sinergi clients revoke` does: revoked, then every listening process asked to forget
    the client, and returned once each has said so. Without the wait a process whose listener
    had not yet been told still answered for the client (`auth/registry.py`)."""

    async def go() -> None:
        engine = create_engine(url, statement_timeout_ms=10_000)
        try:
            async with engine.begin() as connection:
                assert await clients.revoke(connection, client_id)
            heard = await forgotten(libpq_url(engine.url), client_id, timeout_seconds=10)
            assert heard.complete, heard
            assert heard.listening >= 2, heard  # both servers, at least
        finally:
            await engine.dispose()

    asyncio.run(go())


def _headers(servers: list[str], client_id: str, secret: str) -> dict[str, str]:
    issued = httpx.post(
        f"{servers[0]}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def _counted(url: str, client_id: str) -> int:
    """The client's requests that have reached PostgreSQL."""

    async def go() -> int:
        connection = await asyncpg.connect(url)
        try:
            hits = await connection.fetchval(
                "SELECT coalesce(sum(hits), 0) FROM rate_limit_windows WHERE client_id = $1",
                client_id,
            )
        finally:
            await connection.close()
        return int(hits)

    return asyncio.run(go())


def _until_counted(url: str, client_id: str, requests: int) -> None:
    """Wait until a process has sent PostgreSQL its count of the last request, then for each
    process to sync once more: what a quiet client's requests, seconds apart, meet. A busy
    machine may stretch the counting interval; the test waits for it rather than guessing."""
    deadline = time.monotonic() + 30
    while _counted(url, client_id) < requests:
        assert time.monotonic() < deadline, "the count never reached PostgreSQL"
        time.sleep(SYNC_SECONDS)
    time.sleep(5 * SYNC_SECONDS)


def _ask(base: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base}/graphql", json={"query": "{ viewer { clientId } }"}, headers=headers)


def test_two_processes_share_one_clients_rate_limit(servers: list[str], demo_url: str) -> None:
    """Requests further apart than the counting interval are each counted in PostgreSQL."""
    client_id, secret = _register(demo_url)
    headers = _headers(servers, client_id, secret)
    allowance = len(servers) * max(1, LIMIT // 100)  # the README's worst-case overshoot
    answers = []
    for i in range(LIMIT + allowance + 1):
        answers.append(_ask(servers[i % 2], headers))
        if answers[-1].status_code != 200:
            break
        _until_counted(demo_url, client_id, i + 1)
    codes = [answer.status_code for answer in answers]
    assert codes[-1] == 429, codes
    assert LIMIT <= codes.count(200) <= LIMIT + allowance, codes
    refused = answers[-1]
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["limit"] == LIMIT
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW_SECONDS
    # Each process alone saw at most three requests: only a shared count refuses the sixth.
    assert answers[0].json() == {"data": {"viewer": {"clientId": client_id}}}


def test_a_burst_overshoots_the_limit_by_at_most_each_process_allowance(
    servers: list[str], demo_url: str
) -> None:
    """The README's worst case: N processes admit at most N × max(1, limit ÷ 100) requests beyond
    the limit, however the requests fall; never fewer than the limit."""
    client_id, secret = _register(demo_url)
    headers = _headers(servers, client_id, secret)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda i: _ask(servers[i % 2], headers), range(40)))
    admitted = sum(answer.status_code == 200 for answer in answers)
    assert {answer.status_code for answer in answers} == {200, 429}
    assert LIMIT <= admitted <= LIMIT + len(servers) * max(1, LIMIT // 100)
    time.sleep(3 * SYNC_SECONDS)  # every count has reached PostgreSQL: both processes refuse
    assert [_ask(base, headers).status_code for base in servers] == [429, 429]


def test_a_revoked_clients_next_request_is_refused_by_every_process(
    servers: list[str], demo_url: str
) -> None:
    client_id, secret = _register(demo_url)
    headers = _headers(servers, client_id, secret)
    for base in servers:  # each process now holds the registration
        assert _ask(base, headers).status_code == 200
    _revoke(demo_url, client_id)
    refused = [_ask(base, headers) for base in servers]
    assert [answer.status_code for answer in refused] == [401, 401]
    assert all(
        answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" for answer in refused
    )


def test_each_operation_of_a_batch_counts(servers: list[str], demo_url: str) -> None:
    """A batch of LIMIT operations uses up the window: otherwise batches of ten would run ten
    times the limit."""
    client_id, secret = _register(demo_url)
    headers = _headers(servers, client_id, secret)
    batch = [{"query": "{ viewer { clientId } }"}] * LIMIT
    answered = httpx.post(f"{servers[0]}/graphql", json=batch, headers=headers)
    assert answered.status_code == 200, answered.text
    assert len(answered.json()) == LIMIT
    _until_counted(demo_url, client_id, LIMIT)
    assert [_ask(base, headers).status_code for base in servers] == [429, 429]
    # A batch that would take a fresh client past the limit and the allowances is refused whole.
    client_id, secret = _register(demo_url)
    headers = _headers(servers, client_id, secret)
    over = [{"query": "{ viewer { clientId } }"}] * (LIMIT + len(servers) + 1)
    refused = httpx.post(f"{servers[0]}/graphql", json=over, headers=headers)
    assert refused.status_code == 429, refused.text


def test_each_subscribe_message_on_a_websocket_counts(servers: list[str], demo_url: str) -> None:
    """One socket subscribing and completing again and again is held to the limit as requests
    are: beyond it, each subscribe message is refused with RATE_LIMITED, and HTTP answers 429."""
    client_id, secret = _register(demo_url, "province", "62")
    headers = _headers(servers, client_id, secret)
    query = "subscription { msmeChanges { entries { id } endCursor } }"

    async def cycles() -> list[dict[str, Any]]:
        """The answer to each subscribe message (completed at once) until one is refused."""
        uri = servers[0].replace("http://", "ws://") + "/graphql"
        answers = []
        protocol = websockets.Subprotocol("graphql-transport-ws")
        async with websockets.connect(uri, subprotocols=[protocol]) as socket:
            init = {"type": "connection_init", "payload": headers}
            await socket.send(json.dumps(init))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            for cycle in range(3 * LIMIT):
                subscribe = {"id": str(cycle), "type": "subscribe", "payload": {"query": query}}
                await socket.send(json.dumps(subscribe))
                answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert answer["id"] == str(cycle), answer
                answers.append(answer)
                if answer["type"] == "error":
                    return answers
                await socket.send(json.dumps({"id": str(cycle), "type": "complete"}))
        return answers

    answers = asyncio.run(cycles())
    refused = answers[-1]
    assert refused["type"] == "error", answers
    assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    served = [answer for answer in answers if answer["type"] == "next"]
    assert len(served) == len(answers) - 1
    # The connection counted once, each subscribe message once more.
    assert LIMIT <= 1 + len(served) <= LIMIT + len(servers) * max(1, LIMIT // 100)
    time.sleep(3 * SYNC_SECONDS)
    assert [_ask(base, headers).status_code for base in servers] == [429, 429]


async def test_a_purge_keeps_the_count_of_a_window_longer_than_an_hour(demo_url: str) -> None:
    """Every process purges old windows now and then; rows are keyed by their window's start,
    and the purge took every row begun over an hour ago: an hour into a longer window the
    client's count went, and each process (or one restarted) admitted the limit again. A window
    is purged once it has been over for an hour, and not before."""
    window = 7200
    # The window that began one to three hours ago on the database's clock: a purge taking rows
    # begun over an hour ago took it, one waiting an hour past its end keeps it.
    # Its end falls within an hour either side of now: a run whose second or so straddles the
    # purge's cutoff (about one in 7200) may see it taken, the clock's doing, not the code's.
    index = round(time.time() / window) - 1
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    primary = autocommit(engine)

    def limiter(at_index: int) -> RateLimiter:
        return RateLimiter(per_window=LIMIT, window_seconds=window, clock=lambda: at_index * window)

    try:
        client_id = f"purged-{uuid.uuid4().hex}"
        first = limiter(index)
        assert [await first.admit(primary, client_id) for _ in range(LIMIT - 1)] == [None] * 4
        await first.sync(primary)
        await limiter(index - 2).admit(primary, client_id)  # a window over for over an hour
        await first.purge(primary)
        restarted = limiter(index)
        admitted = [await restarted.admit(primary, client_id) is None for _ in range(LIMIT)]
        assert admitted == [True, False, False, False, False]
        connection = await asyncpg.connect(demo_url)
        try:
            windows = await connection.fetch(
                "SELECT window_start FROM rate_limit_windows WHERE client_id = $1", client_id
            )
        finally:
            await connection.close()
        assert [row["window_start"].timestamp() for row in windows] == [index * window]
    finally:
        await engine.dispose()


async def test_a_purge_by_a_process_of_shorter_windows_keeps_a_longer_windows_count(
    demo_url: str,
) -> None:
    """While a change of the window's length rolls out (and in these tests, whose apps of
    several settings share a database), processes count windows of different lengths. Each
    purged by its own: one counting minutes took, every five minutes, the count of a client whose
    processes count longer windows once such a window was an hour old, and the client was
    admitted to its limit again (tests/test_rate_limit_first.py saw it as a 200 for a 429). A
    count keeps its window's length, and the purge reads it."""
    # A window of some twenty days that began two hours ago on this clock (the database's
    # differs by far less): over an hour old, so a purge by the minute took it, and live.
    index = 1000
    window = int(time.time() - 7200) // index
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    primary = autocommit(engine)

    def long_windows() -> RateLimiter:
        return RateLimiter(per_window=LIMIT, window_seconds=window, clock=lambda: index * window)

    try:
        client_id = f"long-window-{uuid.uuid4().hex}"
        counting = long_windows()
        assert [await counting.admit(primary, client_id) for _ in range(LIMIT - 1)] == [None] * 4
        await counting.sync(primary)
        await RateLimiter(per_window=LIMIT, window_seconds=60).purge(primary)
        restarted = long_windows()
        admitted = [await restarted.admit(primary, client_id) is None for _ in range(LIMIT)]
        assert admitted == [True, False, False, False, False]
    finally:
        await engine.dispose()
