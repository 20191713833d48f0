"""Send each signed checkpoint to syslog as well, so a copy leaves the host as it is made.

The checkpoint file sits on the server's own disk, where the host's root can cut it short
along with the newest entries. A syslog collector on another host (or the local daemon,
forwarding with its own reliable or encrypted transport) keeps a copy out of that reach.

One datagram per checkpoint, in the BSD form every syslog daemon reads (`<PRI>TAG[PID]: MSG`),
under the authpriv facility that Debian's rsyslog writes to its restricted `auth.log`; route it
to a file of its own with `:programname, isequal, "sinergi-audit"`. A lost datagram costs
nothing but detail: each checkpoint covers the whole chain up to its entry, so the next one
supersedes it, and the file still holds every one. Written with sockets rather than
`logging.handlers.SysLogHandler`, which prints a traceback to stderr when sending fails: the
sealer reports a failure on `sinergi.audit`, in the service's own log format.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

TAG = "sinergi-audit"
AUTHPRIV = 10
NOTICE = 5
PRIORITY = AUTHPRIV * 8 + NOTICE


@dataclass(frozen=True, slots=True)
class SyslogAddress:
    """A UDP collector (`host`, `port`) or a local daemon's datagram socket (`path`)."""

    host: str = ""
    port: int = 0
    path: str = ""


def parse_address(raw: str) -> SyslogAddress:
    """`udp://HOST:PORT` or the path of a Unix datagram socket (`/dev/log`); ValueError saying
    which form is expected otherwise."""
    if raw.startswith("/"):
        return SyslogAddress(path=raw)
    expected = "udp://HOST:PORT or a socket's absolute path such as /dev/log"
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "udp" or not parts.hostname or port is None or parts.path:
        raise ValueError(f"must be {expected}, got {raw!r}")
    return SyslogAddress(host=parts.hostname, port=port)


def message(line: str) -> bytes:
    """The datagram carrying the checkpoint `line`: the line, whole, after syslog's header."""
    return f"<{PRIORITY}>{TAG}[{os.getpid()}]: {line.rstrip()}\n".encode()


def send(address: SyslogAddress, line: str) -> None:
    """Send the checkpoint `line`; OSError when it cannot (no daemon on the socket, no route,
    a host name that does not resolve). Blocks on a name lookup: call it off the event loop."""
    if address.path:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
            unix.sendto(message(line), address.path)
        return
    family, kind, protocol, _, target = socket.getaddrinfo(
        address.host, address.port, type=socket.SOCK_DGRAM
    )[0]
    with socket.socket(family, kind, protocol) as udp:
        udp.sendto(message(line), target)
