"""Syslog collectors for the tests: a UDP socket that receives what `serve` sends, a TCP or
TLS listener that reads its octet-counted frames, and the lines a daemon such as rsyslog
writes of either to its file."""

from __future__ import annotations

import queue
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sinergi.checkpoint_syslog import SyslogAddress

HEADER = re.compile(rb"<(\d+)>([\w-]+)\[(\d+)\]: ")


@dataclass(frozen=True)
class Collector:
    address: SyslogAddress
    listening: socket.socket

    def received(self, count: int, seconds: float = 60) -> list[bytes]:
        """The next `count` datagrams; socket.timeout when they do not come within `seconds`."""
        self.listening.settimeout(seconds)
        return [self.listening.recv(65536) for _ in range(count)]


@contextmanager
def collector() -> Iterator[Collector]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listening:
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        yield Collector(SyslogAddress("udp", "127.0.0.1", port), listening)


def frames(stream: bytes) -> list[bytes]:
    """The messages of an octet-counted stream (RFC 6587: length, space, message); a stream
    that does not split exactly so is an AssertionError."""
    found = []
    while stream:
        length, space, rest = stream.partition(b" ")
        assert space, stream
        assert length.isdigit(), stream
        assert len(rest) >= int(length), stream
        found.append(rest[: int(length)])
        stream = rest[int(length) :]
    return found


@dataclass(frozen=True)
class StreamCollector:
    port: int
    connections: queue.Queue[bytes | BaseException]
    """What each connection sent before it closed, or why it failed (a TLS handshake)."""

    def received(self, seconds: float = 60) -> bytes | BaseException:
        """The next connection's bytes; queue.Empty when none comes within `seconds`."""
        return self.connections.get(timeout=seconds)


@contextmanager
def stream_collector(
    tls: ssl.SSLContext | None = None, answers: bool = True
) -> Iterator[StreamCollector]:
    """A collector on 127.0.0.1 that reads each connection to its end, over TLS with `tls`'s
    certificate when given, answering the sender's close_notify with its own when `answers`."""
    connections: queue.Queue[bytes | BaseException] = queue.Queue()
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    accepted, _ = listening.accept()
                except TimeoutError:
                    continue
                try:
                    with accepted:
                        accepted.settimeout(30)
                        connections.put(_read_to_end(accepted, tls, answers))
                except OSError as failure:  # ssl.SSLError among them: a refused handshake
                    connections.put(failure)

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            yield StreamCollector(listening.getsockname()[1], connections)
        finally:
            stop.set()
            server.join()


def _read_to_end(accepted: socket.socket, tls: ssl.SSLContext | None, answers: bool) -> bytes:
    """Over TLS, a connection's end is its close_notify: a connection cut without one is an
    ssl.SSLEOFError, as for a collector that cannot tell a truncated frame from a whole one."""
    if tls is None:
        return b"".join(iter(lambda: accepted.recv(65536), b""))
    secure = tls.wrap_socket(accepted, server_side=True, suppress_ragged_eofs=False)
    received = b"".join(iter(lambda: secure.recv(65536), b""))
    if answers:
        secure.unwrap()
    return received


def as_daemon_writes(message: bytes) -> str:
    """The message's line in the collector's file, as rsyslog writes it: time, host, then the
    tag and message; the priority is not written."""
    found = HEADER.match(message)
    assert found is not None, message
    tag_and_message = message[found.start(2) :].decode()
    return f"2026-12-04T10:00:00.000000+07:00 collector {tag_and_message}"
