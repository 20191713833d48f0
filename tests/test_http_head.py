"""A request's head on a served app (sinergi.http_protocol): its bound holds however the head is
written, and a connection whose head does not come is not held for ever."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator

import pytest

from sinergi.settings import MAX_HEADER_BYTES
from tests.support.databases import as_service
from tests.support.served import served_process

HEAD_TIMEOUT = 1
"""SINERGI_HEAD_TIMEOUT, in seconds, of the server these tests start: short, so that a test
waits little for it."""

CLOSED_WITHIN = 30.0
"""How long a test waits for a connection the server should close: far past HEAD_TIMEOUT, so
that a busy machine does not fail it."""


@pytest.fixture(scope="module")
def address(module_reference_url: str) -> Iterator[tuple[str, int]]:
    settings = {"SINERGI_HEAD_TIMEOUT": str(HEAD_TIMEOUT)}
    with served_process(as_service(module_reference_url), "production", settings) as (base, _):
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def _answer_to(address: tuple[str, int], request: bytes) -> bytes:
    """What the server writes back to `request`, sent in one write, until it closes the
    connection (the server may close it before it has read all of `request`)."""
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65_536):
                answer += chunk
        return answer


def _get(address: tuple[str, int], target: bytes = b"/healthz", headers: bytes = b"") -> bytes:
    """A GET of `target` with `headers` (lines, each ending CRLF) and the Host the server serves
    (`serve --dev`, as tests serve, answers a loopback Host only: sinergi.loopback)."""
    host = b"Host: %s:%d\r\n" % (address[0].encode(), address[1])
    return b"GET " + target + b" HTTP/1.1\r\n" + host + headers + b"\r\n"


def _statuses(answer: bytes) -> list[bytes]:
    """The status lines of the answers in `answer` (their bodies, JSON, hold none)."""
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", answer)


def _refused_431(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer[:300]
    (error,) = json.loads(body)["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "headers"}
    assert f"at most {MAX_HEADER_BYTES} bytes" in error["message"]


@pytest.mark.parametrize("pad", [100_000, 200_000, 310_000, 2_000_000])
def test_a_head_over_its_bound_is_431_however_much_of_it_one_read_holds(
    address: tuple[str, int], pad: int
) -> None:
    """A head sent in one write was not counted in the read it began in, and a read holds
    ~256 KB: heads of 100 to 310 KB were answered 200, though 200 KB and 2 MB were 431."""
    _refused_431(_answer_to(address, _get(address, headers=b"X-Pad: %s\r\n" % (b"a" * pad))))


def test_a_url_over_the_bound_is_431_naming_it(address: tuple[str, int]) -> None:
    """A URL over ~65 KB was answered 400, 'not a well-formed HTTP/1.1 request'."""
    for length in (70_000, 300_000):
        _refused_431(_answer_to(address, _get(address, b"/healthz?pad=" + b"a" * length)))


def test_heads_under_the_bound_pass_one_after_another_in_one_write(
    address: tuple[str, int],
) -> None:
    """Each head is held to the bound, not the requests a read holds together: three heads of
    30 KB pipelined in one write, and a URL just under the bound, are answered."""
    pipelined = _get(address, headers=b"X-Pad: %s\r\n" % (b"a" * 30_000))
    last = _get(address, b"/healthz?pad=" + b"a" * 60_000, b"Connection: close\r\n")
    answer = _answer_to(address, pipelined * 3 + last)
    assert _statuses(answer) == [b"HTTP/1.1 200 OK"] * 4, answer[:300]


def _until_closed(sock: socket.socket) -> bytes:
    """What the server writes on `sock` until it closes it, the client sending nothing more;
    fails if it is not closed within CLOSED_WITHIN seconds."""
    answer = b""
    try:
        while chunk := sock.recv(65_536):
            answer += chunk
    except TimeoutError:
        pytest.fail(f"still open after {CLOSED_WITHIN} s, having answered {answer[:200]!r}")
    except ConnectionResetError:
        pass
    return answer


def _json_answer(sock: socket.socket) -> bytes:
    """One answer the server writes on `sock`, read until its JSON body ends; the connection
    kept."""
    answer = b""
    while not answer.endswith(b"}"):
        answer += sock.recv(65_536)
    return answer


def test_a_connection_whose_head_does_not_come_is_closed(address: tuple[str, int]) -> None:
    """uvicorn times a connection out only once it has answered on it, and no more once a
    next request's first byte has come: 19,985 connections that sent nothing, or part of a
    head, held as many descriptors, and valid requests were refused once the process had no
    more. Nothing, part of a head, and part of a kept-alive connection's second head, sent
    after its first was answered, are each closed unanswered."""
    request = _get(address)
    for sent in (b"", request[:-10]):
        with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
            sock.sendall(sent)
            assert _until_closed(sock) == b""
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        sock.sendall(request)
        answer = _json_answer(sock)
        assert _statuses(answer) == [b"HTTP/1.1 200 OK"], answer[:300]
        sock.sendall(request[:-10])
        assert _until_closed(sock) == b""


def test_a_head_that_comes_in_time_is_answered(address: tuple[str, int]) -> None:
    """The head's time runs from the connection (or the request's first byte when kept alive),
    not from each piece: pieces well within it make a request served as any other."""
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        request = _get(address, headers=b"Connection: close\r\n")
        for piece in (request[:10], request[10:30], request[30:]):
            sock.sendall(piece)
            time.sleep(HEAD_TIMEOUT / 10)
        answer = b""
        while chunk := sock.recv(65_536):
            answer += chunk
    assert _statuses(answer) == [b"HTTP/1.1 200 OK"], answer[:300]


def test_a_lone_line_end_after_an_answer_does_not_hold_the_connection(
    address: tuple[str, int],
) -> None:
    """uvicorn stops its keep-alive timer on any byte, and httptools passes over a line end
    before a request without beginning one, so the head's time never began: a CRLF sent after
    an answer held the connection for ever."""
    request = _get(address)
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        sock.sendall(request)
        answer = _json_answer(sock)
        assert _statuses(answer) == [b"HTTP/1.1 200 OK"], answer[:300]
        sock.sendall(b"\r\n")
        assert _until_closed(sock) == b""


def _early_answered(address: tuple[str, int], length: int) -> bytes:
    """The head of a request refused before its body is read (415: a body that is not JSON)."""
    head = b"POST /graphql HTTP/1.1\r\nHost: %s:%d\r\n" % (address[0].encode(), address[1])
    return head + b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % length


def test_a_body_that_falls_silent_after_its_request_was_answered_is_closed(
    address: tuple[str, int],
) -> None:
    """The rest of a body after an early answer (no token needed: a 401 or 415) is timed as a
    head from its first read, the app having answered and uvicorn's keep-alive timer stopped by
    that byte: untimed, a client that fell silent held the connection for ever."""
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        sock.sendall(_early_answered(address, 600))
        assert _statuses(_json_answer(sock)) == [b"HTTP/1.1 415 Unsupported Media Type"]
        time.sleep(HEAD_TIMEOUT / 5)
        sock.sendall(b"a" * 100)
        assert _until_closed(sock) == b""


def test_a_body_trickled_after_its_request_was_answered_is_closed(
    address: tuple[str, int],
) -> None:
    """A byte of body now and then after an early answer does not keep the connection: its
    time runs from the first, not from each (a body not yet answered has its own deadline)."""
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        sock.sendall(_early_answered(address, 1_000_000))
        assert _statuses(_json_answer(sock)) == [b"HTTP/1.1 415 Unsupported Media Type"]
        sock.settimeout(HEAD_TIMEOUT / 4)
        started = time.monotonic()
        while time.monotonic() - started < CLOSED_WITHIN:
            try:
                sock.sendall(b"a")
                if sock.recv(65_536) == b"":
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        else:
            pytest.fail(f"still open after {CLOSED_WITHIN} s of a byte every {HEAD_TIMEOUT / 4} s")
        assert time.monotonic() - started < 5 * HEAD_TIMEOUT


@pytest.mark.parametrize(
    ("upgrade", "body"),
    [
        (b"websocket", b"Content-Length: 1\r\n"),
        (b"websocket", b"Transfer-Encoding: chunked\r\n"),
        (b"WebSocket", b"Content-Length: 600\r\n"),
    ],
)
def test_a_websocket_upgrade_declaring_a_body_is_refused(
    address: tuple[str, int], upgrade: bytes, body: bytes
) -> None:
    """httptools hands the connection to the WebSocket protocol at the head's end, which refuses
    a body by discarding all that follows: it answered nothing and closed nothing, a connection
    held for ever with no token."""
    head = b"GET /graphql HTTP/1.1\r\nHost: %s:%d\r\n" % (address[0].encode(), address[1])
    head += (
        b"Connection: Upgrade\r\nUpgrade: %s\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n%s\r\n" % (upgrade, body)
    )
    with socket.create_connection(address, timeout=CLOSED_WITHIN) as sock:
        sock.sendall(head)
        answer = _until_closed(sock)
    assert _statuses(answer) == [b"HTTP/1.1 400 Bad Request"], answer[:300]
    (error,) = json.loads(answer.partition(b"\r\n\r\n")[2])["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "headers"}
    assert "WebSocket upgrade" in error["message"]


def test_a_websocket_upgrade_pipelined_behind_a_request_is_refused_after_its_answer(
    address: tuple[str, int],
) -> None:
    """Handed to the WebSocket protocol at its head's end, the upgrade took the transport's
    callbacks while the request before it was still being answered: that answer went on being
    written unwatched, and a client reading nothing held the connection for ever. The answer
    before it is sent whole, then the upgrade's 400, and the connection closed."""
    upgrade = _get(
        address,
        b"/graphql",
        b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n",
    )
    answer = _answer_to(address, _get(address) + upgrade)
    assert _statuses(answer) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"], answer[:600]
    (error,) = json.loads(answer.rpartition(b"\r\n\r\n")[2])["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "headers"}
    assert "WebSocket upgrade waits for the answers before it" in error["message"]


def test_an_upgrade_not_to_a_websocket_with_a_body_is_answered_as_http(
    address: tuple[str, int],
) -> None:
    """`curl --http2` over plain http asks for h2c with its body: uvicorn answers it as
    HTTP/1.1, and so it is, not refused."""
    head = b"POST /graphql HTTP/1.1\r\nHost: %s:%d\r\n" % (address[0].encode(), address[1])
    head += (
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n"
        b"Content-Type: application/json\r\nContent-Length: 24\r\n\r\n"
        b'{"query": "{ viewer }"}\n'
    )
    answer = _answer_to(address, head)
    assert _statuses(answer)[:1] == [b"HTTP/1.1 401 Unauthorized"], answer[:300]
