"""How Sinergi's own requests to other servers are made (an issuer's JWKS, `sinergi sync`'s
server): the whole answer, headers and body, read under one deadline, and plain http never
through a proxy.

urlopen's timeout bounds each read, not the answer: a server (or whatever answers for it)
sending a byte a second passes that check at every read and holds the request, and the thread
it runs on, for as long as it likes; an issuer's key fetch thread kept the process from exiting.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
import urllib.request
from typing import Any


class DeadlinePassed(TimeoutError):
    """The request's deadline ran out."""


class _DeadlineReads(io.RawIOBase):
    """A response's socket reads, each waiting no longer than what is left of the request's
    deadline, nor than `read_seconds`: the timeout is set before each read, so a trickle of
    headers cannot outlast it either (http.client reads them line by line, each line as many
    reads as it takes)."""

    def __init__(
        self, reads: io.BufferedReader, sock: socket.socket, deadline: float, read_seconds: float
    ) -> None:
        """`reads`: the response's own reader, of which this reads past the buffer (kept
        whole: its socket closes with it)."""
        super().__init__()
        self.reads, self.sock = reads, sock
        self.deadline, self.read_seconds = deadline, read_seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassed
        self.sock.settimeout(min(left, self.read_seconds))
        try:
            return self.reads.raw.readinto(buffer)
        except TimeoutError:
            if left < self.read_seconds:  # the deadline's wait, not a read's
                raise DeadlinePassed from None
            raise

    def close(self) -> None:
        self.reads.close()
        super().close()


def _deadline_connection(
    base: type[http.client.HTTPConnection], deadline: float, read_seconds: float
) -> Any:
    """`base`, its responses read under `deadline` (`_DeadlineReads`)."""

    class Response(http.client.HTTPResponse):
        def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            self.fp = io.BufferedReader(_DeadlineReads(self.fp, sock, deadline, read_seconds))

    class Connection(base):  # type: ignore[valid-type,misc]
        response_class = Response

    return Connection


class _DeadlineHTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: float, read_seconds: float) -> None:
        super().__init__()
        self.deadline, self.read_seconds = deadline, read_seconds

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = _deadline_connection(
            http.client.HTTPConnection, self.deadline, self.read_seconds
        )
        return self.do_open(connection, req)


class _DeadlineHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float, read_seconds: float) -> None:
        super().__init__()
        self.deadline, self.read_seconds = deadline, read_seconds

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = _deadline_connection(
            http.client.HTTPSConnection, self.deadline, self.read_seconds
        )
        return self.do_open(connection, req)


def _https_proxies() -> dict[str, str]:
    """The proxy urllib reads from the environment for https URLs (`https_proxy`), and no
    other. A plain http URL is one to this machine (auth/cleartext.py), which no proxy need
    carry: sent through one named in `http_proxy` it crossed the network in the clear, a JWKS
    fetch answered with whatever keys the proxy chose, a sync's client secret and bearer token
    read by it. Through an https proxy, a CONNECT tunnel, TLS still checks the server itself."""
    return {scheme: url for scheme, url in urllib.request.getproxies().items() if scheme == "https"}


def opener(
    seconds: float, read_seconds: float, *handlers: urllib.request.BaseHandler
) -> urllib.request.OpenerDirector:
    """An opener whose answers are read within `seconds` from now in all (past it, a read
    raises DeadlinePassed), each read waiting at most `read_seconds`, through a proxy only for
    https (`_https_proxies`); `handlers` as urllib.request.build_opener takes them (a redirect
    policy)."""
    deadline = time.monotonic() + seconds
    return urllib.request.build_opener(
        urllib.request.ProxyHandler(_https_proxies()),
        *handlers,
        _DeadlineHTTP(deadline, read_seconds),
        _DeadlineHTTPS(deadline, read_seconds),
    )
