"""A client that does not read its answers on a served app (sinergi.http_protocol): cut off once
they stop draining for SINERGI_HEAD_TIMEOUT, while one that reads them slowly gets them whole."""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Iterator

import pytest

from sinergi.graphiql import ASSETS_PATH, STATIC_DIR
from tests.support.databases import as_service
from tests.support.served import served_process

HEAD_TIMEOUT = 2
"""SINERGI_HEAD_TIMEOUT, in seconds, of the server these tests start: short, so that a test
waits little for it, yet several of the slow reader's pauses long."""

CLOSED_WITHIN = 30.0
"""How long a test waits for a connection the server should cut off: far past HEAD_TIMEOUT, so
that a busy machine does not fail it."""

SCRIPT = f"{ASSETS_PATH}/graphiql.min.js"
"""GraphiQL's script, served in development: megabytes, more than the process's high-water
mark and the kernel's send buffer hold for a client with a small receive window."""

SCRIPT_PATH = STATIC_DIR / "graphiql" / "graphiql.min.js"

RECEIVE_BUFFER = 4096
"""The clients' SO_RCVBUF: a window small enough that the server's buffers fill at once."""


@pytest.fixture(scope="module")
def address(module_reference_url: str) -> Iterator[tuple[str, int]]:
    settings = {"SINERGI_HEAD_TIMEOUT": str(HEAD_TIMEOUT)}
    with served_process(as_service(module_reference_url), "development", settings) as (base, _):
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def _client(address: tuple[str, int]) -> socket.socket:
    """A connection with a small receive window, having sent three GETs of SCRIPT pipelined
    (the last asking to close)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.settimeout(CLOSED_WITHIN)
    sock.connect(address)
    host = b"Host: %s:%d\r\n" % (address[0].encode(), address[1])
    get = b"GET " + SCRIPT.encode() + b" HTTP/1.1\r\n" + host
    sock.sendall((get + b"\r\n") * 2 + get + b"Connection: close\r\n\r\n")
    return sock


def test_a_client_that_reads_nothing_of_its_answers_is_cut_off(address: tuple[str, int]) -> None:
    """uvicorn waits for the socket to drain for ever: a client that sent requests and read
    nothing held its connection, the answer's task and megabytes of buffers for as long as it
    liked. It is reset once its answers have not drained for HEAD_TIMEOUT, having read
    nothing, well before it could have had them all."""
    with _client(address) as sock:
        waited = _cut_off(sock)
        assert HEAD_TIMEOUT <= waited < 5 * HEAD_TIMEOUT, waited
        received = 0
        with pytest.raises(ConnectionResetError):  # noqa: PT012 - what came before the reset
            while chunk := sock.recv(65_536):
                received += len(chunk)
        assert received < SCRIPT_PATH.stat().st_size


def test_a_websocket_upgrade_pipelined_behind_an_unread_answer_does_not_save_it(
    address: tuple[str, int],
) -> None:
    """Taken as an upgrade at its head's end, it handed the transport's callbacks to the
    WebSocket protocol while the script was still being written: unwatched, a client reading
    nothing held the connection past 40 s. Refused instead, the script's answer stays watched."""
    host = b"Host: %s:%d\r\n" % (address[0].encode(), address[1])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.settimeout(CLOSED_WITHIN)
        sock.connect(address)
        sock.sendall(
            b"GET " + SCRIPT.encode() + b" HTTP/1.1\r\n" + host + b"\r\n"
            b"GET /graphql HTTP/1.1\r\n" + host + b"Connection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        )
        waited = _cut_off(sock)
    assert HEAD_TIMEOUT <= waited < 5 * HEAD_TIMEOUT, waited


def test_a_client_that_reads_its_answers_slowly_gets_them_whole(address: tuple[str, int]) -> None:
    """Progress counts what the kernel holds too: under uvloop the process's own buffer stays
    put for seconds while a client reads a few hundred KB/s (4 KB each 10 ms here, ~30 s for
    the three), so a slow reader was cut off mid-answer, about HEAD_TIMEOUT in, when that
    buffer alone was watched."""
    answers = bytearray()
    with _client(address) as sock:
        while chunk := sock.recv(RECEIVE_BUFFER):
            answers += chunk
            time.sleep(0.01)
    assert _bodies(bytes(answers)) == [SCRIPT_PATH.read_bytes()] * 3


def _cut_off(sock: socket.socket) -> float:
    """How long the server took to reset or close `sock`, the client reading nothing of it;
    fails if it has not within CLOSED_WITHIN seconds."""
    started = time.monotonic()
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP)  # not POLLIN: read nothing
    assert poller.poll(int(CLOSED_WITHIN * 1000)), f"still open after {CLOSED_WITHIN} s unread"
    return time.monotonic() - started


def _bodies(answers: bytes) -> list[bytes]:
    """The bodies of the answers one after another in `answers`, each as long as its
    Content-Length says (what is past the last is a body too short, or more)."""
    bodies = []
    while answers:
        head, _, answers = answers.partition(b"\r\n\r\n")
        declared = re.search(rb"(?im)^content-length: (\d+)\r?$", head)
        assert declared is not None, head[:300]
        length = int(declared[1])
        bodies.append(answers[:length])
        answers = answers[length:]
    return bodies
