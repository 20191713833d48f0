"""What a stopping server answers a request still running when its shutdown grace ends: uvicorn
cancels the request's task, and answered it with its own bare text/plain 500 (no code, no
request id), which told a client neither to retry nor whether its mutation was applied."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from starlette.types import Message, Receive, Scope, Send

from auth.http import TOKEN_PATH
from sinergi.app import create_app
from sinergi.observe import Observer
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.http import Api
from tests.support.served import served_process

CLIENT = "demo-province-62"
CREATE_MSME = "mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
READ = "{ msmes(first: 1) { nodes { nib } } }"
CREATE_COOPERATIVE = (
    "mutation($input: CreateCooperativeInput!) { createCooperative(input: $input) { id } }"
)
BOTH = """mutation($coop: CreateCooperativeInput!, $input: CreateMsmeInput!) {
  createCooperative(input: $coop) { id }
  createMsme(input: $input) { id } }"""


async def _waiting_for_msmes(connection: asyncpg.Connection, count: int) -> None:
    """Until `count` statements wait for the lock on msmes `connection` holds, for at most
    30 s."""
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE relation = 'msmes'::regclass AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with asyncio.timeout(30):
        while await connection.fetchval(waiting) < count:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.05)


async def test_requests_cut_short_by_the_shutdown_grace_are_answered_503_with_their_code(
    demo_url: str, api: Api
) -> None:
    token = api.token(CLIENT)
    stem = f"71{uuid.uuid4().int % 10**10:010d}"
    nib, nib_both, nib_b, nib_waiting = (f"{stem}{last}" for last in "0987")
    business = {
        "nib": nib,
        "name": "Usaha Terhenti",
        "kbliCode": "47112",
        "region": "62.71",
        "capital": "100000000",
        "annualTurnover": "300000000",
    }
    cooperative = {
        "legalEntityNo": f"AHU-{uuid.uuid4().int % 10**7:07d}.AH.01.26.TAHUN 2021",
        "name": "Koperasi Terhenti",
        "type": "PRODUSEN",
        "region": "62.01",
        "membersMale": 30,
        "membersFemale": 25,
    }
    grace = {"SINERGI_SHUTDOWN_GRACE": "1"}
    with served_process(as_service(demo_url), "production", grace) as (base, server):
        locker = await asyncpg.connect(demo_url)
        try:
            async with (
                httpx.AsyncClient(base_url=base, timeout=30) as client,
                locker.transaction(),
            ):
                await locker.execute("LOCK TABLE msmes IN ACCESS EXCLUSIVE MODE")
                headers = {"Authorization": f"Bearer {token}"}

                def sent(body: Any) -> asyncio.Task[httpx.Response]:
                    return asyncio.create_task(client.post("/graphql", json=body, headers=headers))

                mutation = sent({"query": CREATE_MSME, "variables": {"input": business}})
                query = sent({"query": READ})
                both = {"coop": cooperative, "input": {**business, "nib": nib_both}}
                half_done = sent({"query": BOTH, "variables": both})
                other = {
                    **cooperative,
                    "legalEntityNo": f"AHU-{int(nib_b[-7:]):07d}.AH.01.26.TAHUN 2022",
                }
                batch = [
                    {"query": CREATE_COOPERATIVE, "variables": {"input": other}},
                    {"query": CREATE_MSME, "variables": {"input": {**business, "nib": nib_b}}},
                ]
                half_batch = sent(batch)
                waiting = {
                    "query": CREATE_MSME,
                    "variables": {"input": {**business, "nib": nib_waiting}},
                }
                waiting_batch = sent([waiting])
                await _waiting_for_msmes(locker, 5)
                server.send_signal(signal.SIGTERM)
                written, read = await mutation, await query
                half, batched = await half_done, await half_batch
                unfinished = await waiting_batch
        finally:
            await locker.close()
    for answer in (written, read):
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["x-request-id"]
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert written.json()["errors"][0]["extensions"]["applied"] is False
    assert "applied" not in read.json()["errors"][0]["extensions"]
    # The cooperative was committed before the stop, the MSME after it was not: the client
    # reads each change back before sending any part again, never the whole request blindly.
    # A batch is answered as a batch: one such error per operation.
    assert half.status_code == 200, half.text
    assert "retry-after" not in half.headers
    assert batched.status_code == 200, batched.text
    answers = batched.json()
    assert isinstance(answers, list), answers
    assert len(answers) == 2, answers
    # A batch's mutation under way finishes after the answer (it is shielded), so even one
    # that had committed nothing yet may be applied: the client must not send it blindly again.
    assert unfinished.status_code == 200, unfinished.text
    for answer in (half.json(), *answers, *unfinished.json()):
        (error,) = answer["errors"]
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "applied": True}
        assert error["message"] == (
            "the server stopped before it finished this request; some or all of its changes"
            " may have been applied: read each back before sending any part of it again"
        )
    stored = await asyncpg.connect(demo_url)
    try:
        # A batch's mutation under way when the request is cancelled finishes (the batch's
        # MSME may be stored by now), hence "may have been": the document's stops.
        created = "SELECT nib FROM msmes WHERE nib = ANY($1::text[])"
        assert await stored.fetch(created, [nib, nib_both]) == []
    finally:
        await stored.close()


async def test_a_token_request_cut_short_by_the_shutdown_grace_gets_oauths_answer() -> None:
    """A token request still running when the grace ended got GraphQL's error shape, which a
    token client does not read: it gets RFC 6749's, as a database outage answers it."""

    async def cut_short(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError  # as uvicorn cancels the request's task

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": TOKEN_PATH, "headers": [], "state": {}}
    observer = Observer(cut_short, routes=frozenset({TOKEN_PATH}))
    with pytest.raises(asyncio.CancelledError):
        await observer(scope, receive, send)
    start, body = sent
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"5"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"pragma"] == b"no-cache"
    assert headers[b"x-request-id"]
    assert orjson.loads(body["body"]) == {
        "error": "temporarily_unavailable",
        "error_description": "the server stopped before it finished this request; retry shortly",
        "code": "SERVICE_UNAVAILABLE",
        "retryAfter": 5,
    }


class Silenced:
    """A TCP relay to PostgreSQL that can go silent: from `silence()` on it passes nothing either
    way and keeps its connections open, as a database whose packets are dropped does."""

    def __init__(self, upstream: URL) -> None:
        self.upstream = upstream
        self.silent = False
        self.writers: list[asyncio.StreamWriter] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.silent:
                writer.write(data)

    async def _relay(self, client: asyncio.StreamReader, answer: asyncio.StreamWriter) -> None:
        server, ask = await self._upstream()
        self.writers += [answer, ask]
        with contextlib.suppress(ConnectionError):
            await asyncio.gather(self._pipe(client, ask), self._pipe(server, answer))

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the database: by its socket directory when the URL names one (the
        embedded server's), else by TCP."""
        port = self.upstream.port or 5432
        directory = self.upstream.query.get("host")
        if isinstance(directory, str) and directory.startswith("/"):
            return await asyncio.open_unix_connection(f"{directory}/.s.PGSQL.{port}")
        return await asyncio.open_connection(self.upstream.host or "127.0.0.1", port)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[int]:
        """The relay's port while it serves."""
        relay = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        async with relay:
            yield relay.sockets[0].getsockname()[1]
            for writer in self.writers:
                writer.close()

    def silence(self) -> None:
        self.silent = True


async def test_the_app_stops_in_seconds_when_the_database_goes_silent(migrated_url: str) -> None:
    """Each pooled connection's goodbye waited for the database's answer for its command
    timeout, and the figure release's connection, which has none, for ever."""
    database = make_url(as_service(migrated_url))
    relay = Silenced(database)
    async with relay.serving() as port:
        by_tcp = database.difference_update_query(["host"]).set(host="127.0.0.1", port=port)
        relayed = by_tcp.render_as_string(hide_password=False)
        app = create_app(Settings(rate_limit=1_000_000), database_url=relayed)
        lifespan = app.router.lifespan_context(app)
        served = await lifespan.__aenter__()
        async with served["engine"].connect() as connection:  # one more in the pool
            await connection.execute(text("SELECT 1"))
        relay.silence()
        started = time.monotonic()
        async with asyncio.timeout(30):
            await lifespan.__aexit__(None, None, None)
    assert time.monotonic() - started < 15
