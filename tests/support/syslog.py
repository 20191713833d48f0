"""A syslog collector for the tests: a UDP socket that receives what `serve` sends, and the
lines a daemon such as rsyslog writes of it to its file."""

from __future__ import annotations

import re
import socket
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
        yield Collector(SyslogAddress(host="127.0.0.1", port=port), listening)


def as_daemon_writes(datagram: bytes) -> str:
    """The datagram's line in the collector's file, as rsyslog writes it: time, host, then the
    tag and message; the priority is not written."""
    found = HEADER.match(datagram)
    assert found is not None, datagram
    tag_and_message = datagram[found.start(2) :].decode()
    return f"2026-12-04T10:00:00.000000+07:00 collector {tag_and_message}"
