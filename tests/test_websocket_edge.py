"""The WebSocket endpoint's edge (graphql-transport-ws) against `sinergi serve`, as an attacker
meets it: what a connection may send before its token is checked, how long a frame may be at
all, and how long a connection stays open once its token no longer stands."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import create_async_engine

from auth import keys, tokens
from db.engine import async_url
from schema.query_limits import QueryLimits
from sinergi import subscriptions
from sinergi.cli import main
from sinergi.settings import Settings
from tests.support.clients import registered
from tests.support.databases import as_service
from tests.support.minted import minted
from tests.support.served import free_port, served, wait_until_answering

PROTOCOL = websockets.Subprotocol("graphql-transport-ws")
WATCH = "subscription { msmeChanges { endCursor } }"
INIT_TIMEOUT_SECONDS = 2
"""The served app's body timeout, which also bounds how long a socket may wait to identify."""


@pytest.fixture(scope="module")
def serve(module_reference_url: str) -> Iterator[tuple[str, Path]]:
    """`sinergi serve` as the service role, as operators run it; its base URL and log."""
    home = Path(tempfile.mkdtemp(prefix="sinergi-ws-edge-"))
    env = {
        **os.environ,
        "DATABASE_URL": as_service(module_reference_url),
        "SINERGI_ENV": "production",
        "SINERGI_HOME": str(home),
        # the key the reference database's first server recorded (tests/conftest.py)
        "SINERGI_AUDIT_KEY_FILE": str(Settings().audit_key_path),
        "SINERGI_LOG_LEVEL": "info",
        "SINERGI_BODY_TIMEOUT": str(INIT_TIMEOUT_SECONDS),
        # As tests/support/served.py: production's timeouts are not what these tests are about.
        "SINERGI_DB_CONNECT_TIMEOUT": "60",
        "SINERGI_DB_POOL_TIMEOUT": "60",
        "SINERGI_STATEMENT_TIMEOUT_MS": "60000",
    }
    for inherited in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_OWNER_URL"):
        env.pop(inherited, None)
    port = free_port()
    log = home / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(process, f"{base}/readyz", seconds=90, log=log)
        yield base, log
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def base(serve: tuple[str, Path]) -> str:
    return serve[0]


def _client(url: str, name: str) -> tuple[str, str]:
    return registered(url, name, purpose="websocket edge test", scopes="records:read")


def _token(base: str, client: tuple[str, str]) -> str:
    issued = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=client
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def _init(token: str | None) -> str:
    payload = {} if token is None else {"Authorization": f"Bearer {token}"}
    return json.dumps({"type": "connection_init", "payload": payload})


@contextlib.asynccontextmanager
async def _socket(base: str) -> Any:
    uri = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(uri, subprotocols=[PROTOCOL], max_size=None) as opened:
        yield opened


async def _closed_with(opened: Any, seconds: float = 10) -> int | None:
    """The code the server closes the connection with, whatever it sends before."""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(opened.recv(), seconds)
    return opened.close_code  # type: ignore[no-any-return]


async def _acknowledged(base: str, token: str) -> bool:
    async with _socket(base) as opened:
        await opened.send(_init(token))
        answer = json.loads(await asyncio.wait_for(opened.recv(), 10))
        return bool(answer["type"] == "connection_ack")


def test_an_anonymous_frame_over_the_admission_bound_is_refused_undecoded(
    base: str, module_reference_url: str
) -> None:
    """The attack: a `connection_init` of 16 MB of `[{},{},…]`, decoded before its token was
    checked, grew a server by 600 MB. Before the connection is acknowledged no frame longer
    than ADMISSION_FRAME_CHARS is decoded: it is closed with 1009 ("Message Too Big"), not with
    the 4403 its missing token would earn once decoded; a connection with a token still is."""
    bound = subscriptions.ADMISSION_FRAME_CHARS
    padding = ",".join(["{}"] * (bound // 3 + 1))
    init = '{"type": "connection_init", "payload": {"x": [' + padding + "]}}"
    assert bound < len(init) < 2 * bound
    token = _token(base, _client(module_reference_url, "Tepi soket"))

    async def scenario() -> None:
        for _ in range(3):
            async with _socket(base) as opened:
                await opened.send(init)
                assert await _closed_with(opened) == subscriptions.TOO_BIG_CLOSE_CODE
        assert await _acknowledged(base, token)

    asyncio.run(scenario())


def test_an_acknowledged_connection_may_send_a_subscribe_message_as_long_as_a_post(
    base: str, module_reference_url: str
) -> None:
    """The admission bound is lifted at `connection_ack`: a subscribe message may then be as
    long as a POST's body (QueryLimits' `max_frame_chars`)."""
    token = _token(base, _client(module_reference_url, "Tepi soket panjang"))
    long_document = WATCH + " " * (3 * subscriptions.ADMISSION_FRAME_CHARS)
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": long_document}}

    async def scenario() -> None:
        async with _socket(base) as opened:
            await opened.send(_init(token))
            assert json.loads(await opened.recv())["type"] == "connection_ack"
            await opened.send(json.dumps(subscribe))
            await opened.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(opened.recv(), 10)) == {"type": "pong"}

    asyncio.run(scenario())


def _announced_frame(length: int, sent: bytes) -> bytes:
    """The start of a client's text frame announcing `length` bytes of payload (RFC 6455 5.2),
    masked with a zero key so `sent`, the first of them, go as they are."""
    return bytes([0x81, 0x80 | 127]) + length.to_bytes(8, "big") + bytes(4) + sent


@pytest.fixture(scope="module")
def helper_served(module_reference_url: str) -> Iterator[str]:
    """uvicorn as the tests' own helper starts it (tests/support/served.py)."""
    with served(module_reference_url, "production") as started:
        yield started


@pytest.mark.parametrize("server", ["base", "helper_served"])
def test_a_frame_longer_than_any_message_is_refused_as_its_header_announces_it(
    server: str, request: pytest.FixtureRequest
) -> None:
    """uvicorn reads a frame of up to its `ws_max_size` (16 MiB unless told) before the app
    sees any of it: `sinergi serve`, and the tests' own server, give it QueryLimits'
    `max_frame_chars` (SINERGI_MAX_BODY_BYTES), so a frame announcing more is refused with
    1009 at once, the rest of it never awaited."""
    started: str = request.getfixturevalue(server)
    announced = QueryLimits().max_frame_chars + 1

    async def scenario() -> None:
        async with _socket(started) as opened:
            opened.transport.write(_announced_frame(announced, b'{"type": "connection_init"'))
            assert await _closed_with(opened, seconds=5) == subscriptions.TOO_BIG_CLOSE_CODE

    asyncio.run(scenario())


HEAD_PAD = 1024 * 1024
"""A header of 1 MiB: 16 times the bound on a request's head (SINERGI_MAX_HEADER_BYTES)."""


def _answer_to(sock: socket.socket, request: bytes) -> bytes:
    """What the server writes back to `request` until it closes the connection; the server may
    close it before the whole request is sent."""
    with contextlib.suppress(OSError):
        sock.sendall(request)
    answer = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("server", ["base", "helper_served"])
@pytest.mark.parametrize("upgrade", [False, True])
def test_a_request_head_over_its_bound_is_answered_431_and_the_connection_closed(
    server: str, upgrade: bool, request: pytest.FixtureRequest
) -> None:
    """The attack: httptools joins a header's pieces as they arrive, each join copying all that
    came before, before any of ours runs: one header of 60 MiB, from anyone, held a worker for
    seconds (/healthz waited 4.4 s; 120 MiB: 16 s and 140 MB more). A request's head (a
    WebSocket upgrade's too, and the second request's on a kept-alive connection) is answered
    431 and the connection closed once it runs past its bound; another connection is served."""
    started: str = request.getfixturevalue(server)
    host, port = started.removeprefix("http://").split(":")
    head = f"GET /graphql HTTP/1.1\r\nHost: {host}\r\n".encode()
    if upgrade:
        head += b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        head += b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    padded = head + b"X-Pad: " + b"a" * HEAD_PAD + b"\r\n\r\n"
    kept_alive = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for sent in (padded, kept_alive + padded):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            began = time.monotonic()
            answer = _answer_to(sock, sent)
            took = time.monotonic() - began
        if sent.startswith(kept_alive):
            assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
            answer = answer[answer.index(b"HTTP/1.1 ", 1) :]
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert took < 2
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "headers"}
    assert httpx.get(f"{started}/healthz").status_code == 200


def _expiring(url: str, token: str, seconds: float) -> str:
    """A token of the same client as `token`, valid for `seconds` more (past `exp`, with the
    leeway): the shortest SINERGI_TOKEN_LIFETIME is 30 s."""
    claims = tokens.decode_segment(token.split(".")[1])

    async def signing_key() -> Any:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as connection:
                return await keys.signing_key(connection)
        finally:
            await engine.dispose()

    lifetime = 600
    return minted(
        asyncio.run(signing_key()),
        issuer=claims["iss"],
        audience=claims["aud"],
        client_id=claims["client_id"],
        scopes=frozenset(claims["scope"].split()),
        jurisdiction=claims["jurisdiction"],
        org_kind=claims["org_kind"],
        lifetime=lifetime,
        now=time.time() - lifetime - tokens.LEEWAY_SECONDS + seconds,
    )


async def _pinging_until_closed(opened: Any, seconds: float) -> tuple[int | None, float]:
    """Pings every half second, each answered, until the server closes the connection (within
    `seconds`); its close code and when it closed (time.monotonic)."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            assert time.monotonic() < deadline, "still open"
            await opened.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(opened.recv(), 5)) == {"type": "pong"}
            await asyncio.sleep(0.5)
    return opened.close_code, time.monotonic()


def test_an_idle_connection_is_closed_once_its_token_expires(
    base: str, module_reference_url: str
) -> None:
    """The attack: with a 30 s token, a connection sending only pings was still open and
    answering at 100 s, the token checked only for a subscribe message or by a running
    subscription. It is closed with 4403 within RECHECK_SECONDS of its token's expiry, pings
    answered until then."""
    token = _token(base, _client(module_reference_url, "Tepi soket kedaluwarsa"))
    expiring = _expiring(module_reference_url, token, seconds=4)

    async def scenario() -> None:
        async with _socket(base) as opened:
            await opened.send(_init(expiring))
            assert json.loads(await opened.recv())["type"] == "connection_ack"
            started = time.monotonic()
            code, closed = await _pinging_until_closed(opened, seconds=20)
            assert code == 4403
            assert 3 < closed - started < 4 + subscriptions.RECHECK_SECONDS + 3

    asyncio.run(scenario())


def test_an_idle_connection_is_closed_once_its_client_is_revoked(
    base: str, module_reference_url: str
) -> None:
    """As for an expired token: once `sinergi clients revoke` returns, a connection sending only
    pings is closed with 4403 within RECHECK_SECONDS (the revocation reaches every process by
    NOTIFY)."""
    client = _client(module_reference_url, "Tepi soket dicabut")
    token = _token(base, client)

    def revoke() -> None:
        out = io.StringIO()
        env = {"DATABASE_URL": module_reference_url}
        with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out):
            assert main(["clients", "revoke", client[0]]) == 0, out.getvalue()

    async def scenario() -> None:
        async with _socket(base) as opened:
            await opened.send(_init(token))
            assert json.loads(await opened.recv())["type"] == "connection_ack"
            await opened.send(json.dumps({"type": "ping"}))
            assert json.loads(await opened.recv()) == {"type": "pong"}
            await asyncio.to_thread(revoke)
            revoked = time.monotonic()
            code, closed = await _pinging_until_closed(opened, seconds=20)
            assert code == 4403
            assert closed - revoked < subscriptions.RECHECK_SECONDS + 3

    asyncio.run(scenario())


def _logged_since(log: Path, start: int, seconds: float = 2) -> list[dict[str, Any]]:
    """The server's log lines written after byte `start`, once it has had time to flush."""
    time.sleep(seconds)
    with log.open("rb") as read:
        read.seek(start)
        return [json.loads(line) for line in read.read().splitlines() if line.startswith(b"{")]


def test_a_frame_that_is_no_message_closes_the_connection_with_4400(
    serve: tuple[str, Path], module_reference_url: str
) -> None:
    """The attack: anonymous frames `[1]`, `"x"`, `5`, `null` (and later a subscribe message whose
    id is a list) raised TypeError, a 44-line traceback at ERROR, the socket dropped without a
    close frame. Anything but a JSON object whose `type`, and `id` if any, are strings closes
    the connection with 4400, as other malformed messages do, and logs nothing at error."""
    base, log = serve
    token = _token(base, _client(module_reference_url, "Tepi soket rusak"))
    start = log.stat().st_size
    malformed = ["[1]", '"x"', "5", "null", '{"type": 5}', '{"type": "complete", "id": [1]}']

    async def scenario() -> None:
        for frame in malformed:
            async with _socket(base) as opened:
                await opened.send(frame)
                assert await _closed_with(opened) == 4400, frame
        async with _socket(base) as opened:
            await opened.send(_init(token))
            assert json.loads(await opened.recv())["type"] == "connection_ack"
            subscribe = {"id": ["1"], "type": "subscribe", "payload": {"query": WATCH}}
            await opened.send(json.dumps(subscribe))
            assert await _closed_with(opened) == 4400
        assert await _acknowledged(base, token)

    asyncio.run(scenario())
    lines = _logged_since(log, start)
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    assert not any("exception" in line for line in lines)


def _with_header(token: str, header: dict[str, Any]) -> str:
    """`token` with another header, its signature kept (it no longer matches)."""
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return encoded + token[token.index(".") :]


def test_a_tokens_header_is_logged_cut_short(
    serve: tuple[str, Path], module_reference_url: str
) -> None:
    """The attack: a token whose header held a `kid` of 3 MB wrote a log line of 3 MB, refused
    as an unknown kid; an `alg` as long, beside a published kid, did the same. A refusal names
    at most the first SHOWN_CHARS characters of either."""
    base, log = serve
    token = _token(base, _client(module_reference_url, "Tepi soket kid"))
    (published, *_) = httpx.get(f"{base}/.well-known/jwks.json").json()["keys"]
    long = "k" * 10_000
    forged = [
        _with_header(token, {"alg": "ES256", "typ": "at+jwt", "kid": long}),
        _with_header(token, {"alg": long, "typ": "at+jwt", "kid": published["kid"]}),
    ]
    start = log.stat().st_size

    async def scenario() -> None:
        for sent in forged:
            async with _socket(base) as opened:
                await opened.send(_init(sent))
                assert await _closed_with(opened) == 4403

    asyncio.run(scenario())
    refusals = [
        line["message"]
        for line in _logged_since(log, start)
        if line["message"].startswith("refused a WebSocket token")
    ]
    assert len(refusals) == 2
    assert "unknown kid 'kkkk" in refusals[0]
    assert "algorithm 'kkkk" in refusals[1]
    assert all(len(message) < 200 for message in refusals), refusals


def test_a_connection_that_never_identifies_is_closed_as_a_slow_body_is(base: str) -> None:
    """Strawberry's default let a connection wait a minute for its `connection_init`, so anyone
    could hold sockets open without a token: it has as long as a POST has for its body, then
    is closed with 4408 ("Connection initialisation timeout")."""

    async def scenario() -> tuple[int | None, float]:
        started = time.monotonic()
        async with _socket(base) as opened:
            code = await _closed_with(opened, seconds=30)
        return code, time.monotonic() - started

    code, waited = asyncio.run(scenario())
    assert code == 4408
    assert INIT_TIMEOUT_SECONDS <= waited < INIT_TIMEOUT_SECONDS + 8
