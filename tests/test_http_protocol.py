"""The HTTP protocol `sinergi serve` runs: an answer's writes reach the socket as one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sinergi import http_protocol
from sinergi.http_protocol import (
    GatheringHttpToolsProtocol,
    GatheringTransport,
    unsent_in_kernel,
)

STALL_SECONDS = 0.1
"""How long what waits to be sent may stay put in the tests of the transport's watch."""

UNWATCHED_SECONDS = 3600
"""A period no test waits out: its checks are made by hand."""


class _Socket(asyncio.Transport):
    """The socket's side: what was written to it, call by call, and how much of it the client
    has not read (`unread`: 0, as though every write were sent at once, unless a test says)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False
        self.unread = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return self.unread

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


async def test_writes_of_one_turn_go_out_in_one_call_in_order() -> None:
    wire = _Socket()
    gathering = GatheringTransport(wire, asyncio.get_running_loop(), STALL_SECONDS)
    gathering.write(b"HTTP/1.1 200 OK\r\n\r\n")
    gathering.writelines([b"he", b"llo"])
    assert wire.writes == []
    assert gathering.get_write_buffer_size() == 24
    await asyncio.sleep(0)
    assert wire.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]
    gathering.write(b"next")
    await asyncio.sleep(0)
    assert wire.writes[1:] == [b"next"]


async def test_closing_sends_what_waits_and_aborting_drops_it() -> None:
    loop = asyncio.get_running_loop()
    closed, aborted = _Socket(), _Socket()
    closing = GatheringTransport(closed, loop, STALL_SECONDS)
    closing.write(b"last words")
    closing.close()
    assert (closed.writes, closed.closed) == ([b"last words"], True)
    dropping = GatheringTransport(aborted, loop, STALL_SECONDS)
    dropping.write(b"never sent")
    dropping.abort()
    await asyncio.sleep(0)
    assert (aborted.writes, aborted.aborted) == ([], True)


async def test_closing_with_an_answer_unread_resets_once_it_stops_draining() -> None:
    """Closing waits for what is unsent to be sent, for ever: an answer whose end sat under
    the high-water mark (so no `pause_writing`) behind a full kernel buffer held the connection
    for as long as its client read nothing. Closed with any of it unsent, it is watched: while
    it shrinks from one period's check to the next the connection stays, and once it has not
    it is reset. Each period's check is made here by hand, the clock's being an hour off."""
    wire = _Socket()
    gathering = GatheringTransport(wire, asyncio.get_running_loop(), UNWATCHED_SECONDS)
    gathering.write(b"the end of an answer")
    wire.unread = 60_000
    gathering.close()
    for unread in (40_000, 20_000):
        wire.unread = unread
        gathering._stalled()
        assert not wire.aborted, f"reset while the client read, {unread} bytes left"
    gathering._stalled()
    assert wire.aborted


async def test_closing_with_all_sent_or_drained_is_not_watched() -> None:
    """A close with nothing unsent starts no watch; one whose unsent bytes are then all read
    stops watching, and is never reset: the socket's transport has closed it itself."""
    loop = asyncio.get_running_loop()
    sent, drained = _Socket(), _Socket()
    GatheringTransport(sent, loop, STALL_SECONDS).close()
    gathering = GatheringTransport(drained, loop, STALL_SECONDS)
    drained.unread = 5_000
    gathering.close()
    drained.unread = 0
    await asyncio.sleep(STALL_SECONDS * 4)
    assert (sent.closed, sent.aborted, drained.closed, drained.aborted) == (
        True,
        False,
        True,
        False,
    )


def test_a_socket_closed_meanwhile_has_nothing_unsent_in_the_kernel() -> None:
    """A watch may outlive its connection (one upgraded to a WebSocket, whose protocol is told
    of the loss): its socket's descriptor is then -1, which ioctl refuses with a ValueError,
    logged as a traceback on each such connection."""
    closed = socket.socket()
    closed.close()
    assert unsent_in_kernel(closed) == 0


async def test_a_socket_closed_meanwhile_is_not_written_to() -> None:
    wire = _Socket()
    gathering = GatheringTransport(wire, asyncio.get_running_loop(), STALL_SECONDS)
    gathering.write(b"too late")
    wire.closed = True  # the peer went away before the loop's turn ended
    await asyncio.sleep(0)
    assert wire.writes == []


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("hello " + scope["path"])(scope, receive, send)


@asynccontextmanager
async def _served(app: ASGIApp, **options: Any) -> AsyncIterator[int]:
    """`app` served by uvicorn on the protocol, with uvicorn's `options`; its port."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()  # connections wait in the backlog until the server accepts them
    config = uvicorn.Config(app, http=GatheringHttpToolsProtocol, log_level="error", **options)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        yield listening.getsockname()[1]
    finally:
        server.should_exit = True
        await serving


async def test_a_server_on_it_answers_request_after_request_on_one_connection() -> None:
    async with (
        _served(_hello) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        answers = [await client.get(f"/{number}") for number in range(3)]
    assert [answer.text for answer in answers] == ["hello /0", "hello /1", "hello /2"]


async def _body_size(scope: Scope, receive: Receive, send: Send) -> None:
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await PlainTextResponse(str(size))(scope, receive, send)


def _bounded_server() -> contextlib.AbstractAsyncContextManager[int]:
    """`_body_size` served on the protocol with heads bounded to 16 KiB; its port."""
    return _served(_body_size, h11_max_incomplete_event_size=16_384)


async def test_only_a_requests_head_counts_towards_its_bound() -> None:
    """Bodies of any size, sent after their heads in the same reads, and a head just under the
    bound, on one kept-alive connection: none is taken for a head over it."""
    async with (
        _bounded_server() as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        answers = [await client.post("/", content=b"x" * 3_000_000) for _ in range(3)]
        answers.append(await client.get("/", headers={"X-Pad": "a" * 16_000}))
        answers.append(await client.get("/", headers={"X-Pad": "a" * 1_000_000}))
    assert [answer.text for answer in answers[:4]] == ["3000000"] * 3 + ["0"]
    assert answers[4].status_code == 431


def _send_chunked(port: int, body_chunks: int, trailer_bytes: int, chunk: int = 0x10000) -> bytes:
    """A chunked POST of `body_chunks` chunks of `chunk` bytes, sent in pieces of about 64 KiB,
    then a trailer field of `trailer_bytes`, written 16 KiB at a time; what the server answered
    before it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        framed = b"%x\r\n" % chunk + b"x" * chunk + b"\r\n"
        per_send = max(1, 0x10000 // len(framed))
        for sent in range(0, body_chunks, per_send):
            connection.sendall(framed * min(per_send, body_chunks - sent))
        try:
            connection.sendall(b"0\r\nX-Pad: ")
            for _ in range(trailer_bytes // 16_384):
                connection.sendall(b"a" * 16_384)
            connection.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed on it, as it should be once the trailer runs past the bound
        answered = b""
        try:
            while chunk := connection.recv(65_536):
                answered += chunk
        except ConnectionResetError:
            pass
        return answered


async def test_a_chunked_bodys_trailer_is_held_to_the_bound_and_its_body_is_not() -> None:
    """httptools joins trailer fields as it joins headers, each piece copying all before it:
    a trailer of 120 MiB held a worker for ten seconds, the head's bound being done with once
    the headers were read. A chunked body of any size still passes, in chunks of any size."""
    async with _bounded_server() as port:
        body_only = await asyncio.to_thread(_send_chunked, port, 48, 0)
        small_chunks = await asyncio.to_thread(_send_chunked, port, 19_000, 0, 100)
        trailer = await asyncio.to_thread(_send_chunked, port, 0, 4_000_000)
    assert body_only.startswith(b"HTTP/1.1 200"), body_only[:200]
    assert body_only.endswith(str(48 * 0x10000).encode()), body_only[-200:]
    assert small_chunks.startswith(b"HTTP/1.1 200"), small_chunks[:200]
    assert small_chunks.endswith(b"1900000"), small_chunks[-200:]
    assert not trailer.startswith(b"HTTP/1.1 200"), trailer[:200]


def _sent_raw(port: int, request: bytes) -> bytes:
    """What the server answered `request`, sent as is, before it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answered = b""
        while chunk := connection.recv(65_536):
            answered += chunk
        return answered


async def test_a_request_httptools_cannot_parse_is_a_coded_400_and_the_connection_closed() -> None:
    """Smuggling's framings (Content-Length beside Transfer-Encoding, two Content-Lengths, a
    Transfer-Encoding httptools does not know) went out as uvicorn's bare `400 text/plain`, the
    one answer of the edge not in the contract's coded shape."""
    framings = [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: xchunked\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
    ]
    async with _bounded_server() as port:
        answers = [
            await asyncio.to_thread(
                _sent_raw, port, b"POST / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\nhello"
            )
            for framing in framings
        ]
    for answer in answers:  # each read to its end: the server closed the connection
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        assert lines[0] == b"http/1.1 400 bad request", answer
        assert b"content-type: application/json" in lines
        assert b"connection: close" in lines
        (error,) = json.loads(body)["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "request"}
        assert error["message"].startswith("request: not a well-formed HTTP/1.1 request")


async def test_the_protocols_refusals_carry_what_every_answer_carries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 400 and the 431 written before the app sees the request went out with no
    X-Request-ID (the contract: on every response, to quote when asking for help), nor the
    Cache-Control and X-Content-Type-Options every /graphql answer carries. The id is logged
    with the refusal, so that quoting it finds something."""
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
    with caplog.at_level(logging.INFO, logger="sinergi.http"):
        async with (
            _bounded_server() as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            malformed = await asyncio.to_thread(_sent_raw, port, request + b"\r\nhello")
            too_large = await client.get("/", headers={"X-Pad": "a" * 1_000_000})
    head, _, _ = malformed.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request", malformed
    headers = httpx.Headers([tuple(line.split(": ", 1)) for line in lines[1:]])
    assert too_large.status_code == 431
    for answer in (headers, too_large.headers):
        assert answer["cache-control"] == "no-store"
        assert answer["x-content-type-options"] == "nosniff"
        request_id = answer["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
        assert request_id in caplog.text
    assert headers["x-request-id"] != too_large.headers["x-request-id"]


async def _large_or_socket(scope: Scope, receive: Receive, send: Send) -> None:
    """Four megabytes to a GET; a WebSocket accepted and kept until its client leaves."""
    if scope["type"] == "http":
        await PlainTextResponse("a" * 4_000_000)(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def _upgraded_while_an_answer_waits(port: int, seconds: float) -> bytes:
    """A GET read by no one until its answer fills the buffers, then a WebSocket upgrade on the
    same connection, and everything the server writes read for `seconds`."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.3)
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        sock.settimeout(0.1)
        read, deadline = b"", time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                chunk = sock.recv(65_536)
                assert chunk, f"closed after {len(read)} bytes"
                read += chunk
        return read


async def test_a_websocket_upgraded_to_while_an_answer_waits_is_not_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write timer (armed while an answer waits on a client that does not read) is the
    HTTP protocol's: left armed when the WebSocket protocol took the transport, and with it
    the callbacks that stop the timer, it aborted the WebSocket once the buffers were empty."""
    monkeypatch.setattr(http_protocol, "head_timeout_seconds", lambda: 1)
    async with _served(_large_or_socket, lifespan="off", timeout_graceful_shutdown=1) as port:
        read = await asyncio.to_thread(_upgraded_while_an_answer_waits, port, 4)
    assert b"HTTP/1.1 101 " in read
