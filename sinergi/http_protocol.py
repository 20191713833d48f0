"""uvicorn's HTTP protocol, sending each answer to the socket in one write rather than two.

uvicorn writes an answer's status line and headers when the application starts it, and its body
when the application sends it; uvloop sends each write at once, so every answer took two system
calls and two TCP segments: a quarter of the CPU an empty `{ __typename }` costs. Here the writes
made in one turn of the event loop wait for its end and go out together (as asyncio's own
streams do when they cork), in the order they were made.

It bounds a request's head too, which uvicorn does only with h11 (its
`h11_max_incomplete_event_size`, which this protocol honours as well): httptools joins a
header's pieces as they arrive, each join copying every byte before it, before the app sees any
of them, so one header of 60 MiB, sent by anyone, held a worker for seconds.

And it bounds how long an answer may wait on a client that does not read it: uvicorn waits for
its socket to drain for ever, so a client that sent requests and read nothing of their answers
held its connection, the answer's task and megabytes of buffers (`_write_stalled`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import struct
import sys
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sinergi.http_edge import KEPT_PRIVATE, refused
from sinergi.request_ids import REQUEST_ID_HEADER, request_id_from
from sinergi.settings import MAX_HEADER_BYTES, Settings

if sys.platform == "linux":
    from fcntl import ioctl
    from termios import TIOCOUTQ

logger = logging.getLogger("sinergi.http")


def unsent_in_kernel(sock: socket.socket | None) -> int:
    """The bytes written to `sock` that its peer has not yet acknowledged (Linux's TIOCOUTQ):
    under uvloop the process's own buffer moves only once the kernel's send buffer (megabytes)
    is a third empty, so a client reading an answer steadily shows it here long before there.
    0 where it cannot be known (not Linux, not a socket): progress is then read from the
    process's buffer alone, and a slow reader of a large answer may be cut off."""
    if sys.platform != "linux" or sock is None or sock.fileno() < 0:  # -1: closed meanwhile
        return 0
    with contextlib.suppress(OSError):
        return int(struct.unpack("i", ioctl(sock.fileno(), TIOCOUTQ, bytes(4)))[0])
    return 0


class GatheringTransport(asyncio.Transport):
    """A socket's transport whose writes are sent once per turn of the loop. Whatever else is
    asked of it is the socket's; closing sends what is waiting first, aborting drops it.

    What waits to be sent may be watched (`watch_drain`): it must then shrink within each
    `stall_seconds`, or the connection is reset. The socket's transport waits for ever, both
    for room to write (uvicorn's `drain`) and, closing, to flush: a client that sent requests
    and read nothing of their answers held the connection, the answer's task and megabytes of
    the process's and the kernel's buffers. Closing with anything unsent watches it itself."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        stall_seconds: float,
    ) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._waiting: list[bytes | bytearray | memoryview] = []
        self._stall_seconds = stall_seconds
        self._stall_timer: asyncio.TimerHandle | None = None
        """Resets the connection if what waits to be sent has not shrunk in time."""
        self._unsent = 0
        """What waited to be sent when the stall timer was last armed (`_unsent_bytes`)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._waiting:
            self._loop.call_soon(self._send)
        self._waiting.append(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def _send(self) -> None:
        waiting, self._waiting = self._waiting, []
        if waiting and not self._transport.is_closing():
            self._transport.write(b"".join(waiting))

    def write_eof(self) -> None:
        self._send()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self._send()
        self._transport.close()
        if self._transport.get_write_buffer_size():
            self.watch_drain()  # the socket's transport closes once it is sent, if ever

    def abort(self) -> None:
        self._waiting = []
        self.stop_watching()
        self._transport.abort()

    def watch_drain(self) -> None:
        """From now what waits to be sent must shrink within each `stall_seconds` until none
        does, or the connection is reset (`_stalled`)."""
        if self._stall_timer is None:
            self._watch(self._unsent_bytes())

    def stop_watching(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _watch(self, unsent: int) -> None:
        self._unsent = unsent
        self._stall_timer = self._loop.call_later(self._stall_seconds, self._stalled)

    def _unsent_bytes(self) -> int:
        """What waits in the process's buffer and in the kernel's. The process's alone would
        not do: under uvloop it stays put for seconds while a client reads steadily, the
        kernel taking more of it only once a third of its own buffer is free."""
        return self.get_write_buffer_size() + unsent_in_kernel(self.get_extra_info("socket"))

    def _stalled(self) -> None:
        """A client still reading is given more time, and one that has read it all is no longer
        watched; one that read nothing in `stall_seconds` is cut off: reset (SO_LINGER 0), so
        that the kernel drops what it holds for it too rather than keep offering it to a closed
        window."""
        self._stall_timer = None
        if self._transport.is_closing() and not self._transport.get_write_buffer_size():
            return  # closed: what the kernel still holds is its own to time out
        unsent = self._unsent_bytes()
        if unsent == 0:
            return
        if unsent < self._unsent:
            self._watch(unsent)
            return
        sock = self.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._waiting))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


@functools.cache
def head_timeout_seconds() -> int:
    """SINERGI_HEAD_TIMEOUT, read once in each process: uvicorn makes a protocol for each
    connection from its own configuration, which has no such setting."""
    return Settings.from_env().head_timeout_seconds


class HeadRefused(Exception):
    """Raised from httptools' callback when a head read whole is refused (over its bound, an
    upgrade with a body): httptools stops parsing the read at once, so nothing of the request
    reaches the app."""


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (what it runs by default) on a GatheringTransport; a
    connection upgraded to a WebSocket keeps it. A request whose head (its request line and
    headers, a WebSocket upgrade's too) runs past `max_head_bytes` (uvicorn's
    `h11_max_incomplete_event_size`, `serve`'s SINERGI_MAX_HEADER_BYTES) is answered 431 and the
    connection closed: once the reads it came in run past the bound, or, for a head read whole
    in fewer reads than that takes (a read may hold ~256 KB), once it has been read. The same
    bound holds for the rest of a request that is not body: a chunked body's trailer fields are
    joined as headers are, so past it the connection is closed. A request httptools cannot
    parse is answered 400 in the same coded shape, and the connection closed; so is a request
    asking for a WebSocket upgrade that declares a body (`on_headers_complete`).

    A connection's head has `head_timeout_seconds` to come whole, from the connection's opening
    (or, kept alive, from its next request's first byte: until then uvicorn's keep-alive timeout
    holds); past it the connection is closed, unanswered, once any answer under way on it is
    sent. uvicorn times a connection out only once it has answered on it, so connections that
    sent nothing, or part of a head, were held for ever: enough of them took every descriptor
    the process may hold, and valid requests were refused.

    The same time bounds a client that stops reading its answers: once what waits to be sent
    is past the transport's high-water mark (`pause_writing`), or the connection is closed with
    any of it unsent, it must shrink within each `head_timeout_seconds`, or the connection is
    reset (`GatheringTransport.watch_drain`). A WebSocket upgrade pipelined behind a request
    not yet answered is refused (`on_headers_complete`): the WebSocket protocol would take the
    transport's callbacks while that answer is still being written, unwatched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES
        self._unparsed_bytes: int | None = None
        """What has come of the request being read that is not body, in reads wholly inside
        it; None between requests."""
        self._in_head = False
        self._refusal: tuple[int, str, str] | None = None
        """A head was refused (over its bound: 431; a WebSocket upgrade with a body: 400): its
        status, field and reason, answered once the answers before it are, the rest of the
        connection unread."""
        self._framed = False
        """A chunk was framed in the read being parsed."""
        self._head_timer: asyncio.TimerHandle | None = None
        """Closes the connection if the head being waited for has not come whole in time."""
        self._elsewhere = 0
        """The bytes of the read being parsed known to be no part of the request being read:
        bodies, and the heads read whole in it."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(GatheringTransport(transport, self.loop, head_timeout_seconds()))
        assert isinstance(self.transport, GatheringTransport), "uvicorn keeps what it was given"
        self._wait_for_head()

    @property
    def _gathering(self) -> GatheringTransport:
        """The connection's transport, as made in `connection_made`: uvicorn's `transport`,
        typed as what it is (`connection_made` checked it once)."""
        return cast(GatheringTransport, self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_came()
        self._gathering.stop_watching()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        """The WebSocket protocol takes the transport, and the high-water callbacks with it:
        the watch is this protocol's to stop (`resume_writing`), so it stops here."""
        self._gathering.stop_watching()
        super().handle_websocket_upgrade()

    def pause_writing(self) -> None:
        """uvicorn waits for the transport to drain before an answer's next write, for ever:
        from now what waits to be sent must shrink in time (`GatheringTransport.watch_drain`)."""
        super().pause_writing()
        self._gathering.watch_drain()

    def resume_writing(self) -> None:
        self._gathering.stop_watching()
        super().resume_writing()

    def _wait_for_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(head_timeout_seconds(), self._head_late)

    def _head_came(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        """uvicorn's `shutdown`, which a server's stop asks of each connection, does what is
        due: closes it now, or once the answer under way on it is sent."""
        self._head_timer = None
        self.shutdown()

    def data_received(self, data: bytes) -> None:
        """What of a read is not known to be elsewhere (`_elsewhere`) counts towards the bound
        of the request being read, the read it began in too: where it began in that read is
        not known, but what came before it there is body, or heads read whole (it may end a
        body, or follow requests pipelined with it). No body ever counts towards it.

        A read on a connection kept alive between requests starts the head's time: uvicorn stops
        its keep-alive timer on any byte, but httptools passes over line ends before a request
        without beginning one (`on_message_begin`), so a lone CRLF after an answer held the
        connection for ever."""
        if self._refusal is not None:
            return  # read before reading was paused: the refused head's, or what follows it
        if self.timeout_keep_alive_task is not None:
            self._wait_for_head()
        self._framed, self._elsewhere = False, 0
        super().data_received(data)
        if self._unparsed_bytes is None or self._framed or self._refusal is not None:
            return
        if self.transport.is_closing():  # answered 400 (send_400_response)
            return
        self._unparsed_bytes += max(0, len(data) - self._elsewhere)
        if self._unparsed_bytes > self.max_head_bytes:
            self._refuse(431, "headers", self._over_bound())

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._unparsed_bytes, self._in_head = 0, True
        self._wait_for_head()

    def on_headers_complete(self) -> None:
        """A head read whole in fewer reads than would run past the bound is held to it here,
        before the app sees it: it was answered as any other up to a read's size (~256 KB), and
        a URL past what httptools parses (64 KiB) as a malformed request. Refused, the parser
        is stopped (uvicorn then logs the request as invalid); else the head is elsewhere for
        what follows it in its read."""
        self._head_came()
        head_bytes = self._head_bytes()
        if head_bytes > self.max_head_bytes:
            self._refuse(431, "headers", self._over_bound())
            raise HeadRefused(head_bytes)
        if self.parser.should_upgrade() and self._asks_websocket():
            if self._declares_body():
                # httptools hands the connection to the WebSocket protocol at the head's end,
                # which refuses a body by discarding all that follows, answering nothing and
                # closing nothing: held for ever, with no token, the head's time stopped here.
                self._refuse(400, "headers", "a request asking for a WebSocket upgrade has no body")
                raise HeadRefused(head_bytes)
            if self.cycle is not None and not self.cycle.response_complete:
                # Handed over now, the answer under way would go on being written with the
                # transport's callbacks the WebSocket protocol's: unwatched, held for ever by
                # a client that reads nothing.
                self._refuse(
                    400,
                    "headers",
                    "a request asking for a WebSocket upgrade waits for the answers before it",
                )
                raise HeadRefused(head_bytes)
        self._in_head = False
        self._elsewhere += head_bytes
        super().on_headers_complete()

    def _asks_websocket(self) -> bool:
        """As uvicorn takes an upgrade: its last Upgrade header naming websocket. Another
        (h2c, which `curl --http2` asks for with a body) is answered as HTTP."""
        upgrades = [value for name, value in self.headers if name == b"upgrade"]
        return bool(upgrades) and upgrades[-1].lower() == b"websocket"

    def _declares_body(self) -> bool:
        return any(
            name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0")
            for name, value in self.headers
        )

    def _head_bytes(self) -> int:
        """The head just read, as its request line and header lines (`name: value`) are
        written: whitespace httptools dropped is not counted."""
        line = len(self.parser.get_method()) + 1 + len(self.url) + len(b" HTTP/1.1\r\n")
        return line + sum(len(name) + len(value) + 4 for name, value in self.headers) + 2

    def on_chunk_header(self) -> None:
        """A read that frames a chunk is not counted: a body of many small chunks is framing as
        much as body, and is no head."""
        self._framed = True

    def on_body(self, body: bytes) -> None:
        self._elsewhere += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._unparsed_bytes = None
        super().on_message_complete()

    def _refuse(self, status: int, field: str, reason: str) -> None:
        """In the head: `status`, coded as the app's own refusals of a request are, and the
        connection closed, the rest of the head never read; once the requests pipelined before
        it are answered, if they are not yet (`on_response_complete`), so that each answer goes
        out in its request's place. Past it (a trailer), the request's answer may be under way,
        so the connection is only closed."""
        self._unparsed_bytes = None
        if not self._in_head:
            self.transport.close()
            return
        self._refusal = (status, field, reason)
        self.transport.pause_reading()
        if self.cycle is None or self.cycle.response_complete:
            self._answer_and_close(status, field, reason)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusal is not None and self.cycle.response_complete:
            self._answer_and_close(*self._refusal)

    def _over_bound(self) -> str:
        return f"a request's line and headers may be at most {self.max_head_bytes} bytes"

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what httptools cannot parse (Content-Length beside
        Transfer-Encoding, two Content-Lengths, a Transfer-Encoding it does not know, a
        malformed line): 400, coded as the app's own refusals are, rather than uvicorn's bare
        text; the connection closed, as uvicorn closes it, since where a next request would
        begin is not known. uvicorn has logged `msg` already. A head over its bound is answered
        431 instead, and stopped the parser (`on_headers_complete`)."""
        if self._refusal is not None:
            return
        reason = (
            "not a well-formed HTTP/1.1 request (conflicting or unknown Content-Length or"
            " Transfer-Encoding, or malformed syntax)"
        )
        self._answer_and_close(400, "request", reason)

    def _answer_and_close(self, status: int, field: str, reason: str) -> None:
        """A coded refusal of the request itself (sinergi.http_edge.refused), written before
        the app has seen the request, and the connection closed. It carries what the app's
        answers carry (sinergi.observe): a fresh X-Request-ID, logged with the refusal so that
        quoting it finds something, and the headers that keep it private (KEPT_PRIVATE)."""
        request_id = request_id_from(None)
        logger.warning("refused with %d, request id %s: %s", status, request_id, reason)
        body = json.dumps(refused(field, reason)).encode()
        answer = [STATUS_LINE[status]]
        for name, value in (
            *self.server_state.default_headers,
            *KEPT_PRIVATE,
            (REQUEST_ID_HEADER.lower().encode(), request_id.encode()),
        ):
            answer += [name, b": ", value, b"\r\n"]
        answer += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(answer))
        self.transport.close()
