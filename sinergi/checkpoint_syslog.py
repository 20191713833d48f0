"""Send each signed checkpoint to syslog as well, so a copy leaves the host as it is made.

The checkpoint file sits on the server's own disk, where the host's root can cut it short
along with the newest entries. A syslog collector on another host (or the local daemon,
forwarding with its own reliable or encrypted transport) keeps a copy out of that reach.

Each checkpoint is one message in the BSD form every syslog daemon reads (`<PRI>TAG[PID]: MSG`),
under the authpriv facility that Debian's rsyslog writes to its restricted `auth.log`; route it
to a file of its own with `:programname, isequal, "sinergi-audit"`. Over UDP or a local socket
it is one datagram; over TCP or TLS (RFC 5425) it is one octet-counted frame (RFC 6587) on a
connection of its own, closed (over TLS with close_notify) once the frame is sent: a checkpoint
goes at most once per sealing round, and a connection that lives only as long as its message
never sends into one the collector dropped long ago. TLS verifies the collector's certificate
and name, against the system's authorities or a bundle of the operator's own
(`SINERGI_AUDIT_SYSLOG_CA`), so a host that takes the collector's address on the network
receives nothing; to a collector that authenticates its senders, it presents a certificate of
Sinergi's own (`SINERGI_AUDIT_SYSLOG_CERT`). A lost message costs nothing but detail: each
checkpoint covers the whole chain up to its entry, so the next one supersedes it, and the file
still holds every one. Written with sockets rather than `logging.handlers.SysLogHandler`, which
prints a traceback to stderr when sending fails and knows no TLS: the sealer reports a failure
on `sinergi.audit`, in the service's own log format.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

TAG = "sinergi-audit"
AUTHPRIV = 10
NOTICE = 5
PRIORITY = AUTHPRIV * 8 + NOTICE
TIMEOUT_SECONDS = 10
"""How long connecting to a collector, and sending it a checkpoint, may take."""

Transport = Literal["udp", "tcp", "tls", "unix"]
_SCHEMES: dict[str, Transport] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}
EXPECTED = "udp://, tcp:// or tls://HOST:PORT, or a socket's absolute path such as /dev/log"


@dataclass(frozen=True, slots=True)
class SyslogAddress:
    """A collector at (`host`, `port`) over UDP, TCP or TLS, or a local daemon's datagram
    socket (`path`)."""

    transport: Transport
    host: str = ""
    port: int = 0
    path: str = ""
    ca_file: str = ""
    """TLS only: the PEM bundle of the authorities the collector's certificate must chain to;
    empty for the system's."""
    cert_file: str = ""
    """TLS only: the certificate chain (PEM) Sinergi presents to a collector that asks for
    one; empty to present none."""
    key_file: str = ""
    """Its private key (PEM), when `cert_file` does not hold it."""


def parse_address(raw: str) -> SyslogAddress:
    """The collector `raw` names; ValueError saying which forms are expected otherwise."""
    if raw.startswith("/"):
        return SyslogAddress("unix", path=raw)
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = None
    transport = _SCHEMES.get(parts.scheme)
    if transport is None or not parts.hostname or port is None or parts.path:
        raise ValueError(f"must be {EXPECTED}, got {raw!r}")
    try:
        parts.hostname.encode("idna")  # what the resolver would refuse at every send
    except UnicodeError:
        raise ValueError(f"names a host that cannot be looked up, got {raw!r}") from None
    return SyslogAddress(transport, parts.hostname, port)


def trusting(address: SyslogAddress, ca_file: str) -> SyslogAddress:
    """`address`, its collector's certificate checked against `ca_file`'s authorities only;
    ValueError when it is no TLS collector or the bundle cannot be read (said at start, not at
    each sealing round)."""
    if address.transport != "tls":
        raise ValueError("names authorities for a tls:// collector only")
    trusted = replace(address, ca_file=ca_file)
    _tls_context(trusted.ca_file, trusted.cert_file, trusted.key_file)
    return trusted


def presenting(address: SyslogAddress, cert_file: str, key_file: str) -> SyslogAddress:
    """`address`, Sinergi presenting `cert_file`'s certificate (its key in `key_file`, or in
    `cert_file` when that is empty) to a collector that authenticates its senders; ValueError
    when it is no TLS collector or they cannot be read, or do not match."""
    if address.transport != "tls":
        raise ValueError("is for a tls:// collector only")
    presented = replace(address, cert_file=cert_file, key_file=key_file)
    _tls_context(presented.ca_file, presented.cert_file, presented.key_file)
    return presented


@lru_cache(maxsize=4)
def _tls_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """What verifies a collector: its certificate chained to `ca_file`'s authorities (empty:
    the system's) and naming the host dialled; and what Sinergi presents, if anything.
    ValueError for files that cannot be read."""
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as problem:
        raise ValueError(
            f"cannot be read as PEM certificates ({Path(ca_file)}): {problem}"
        ) from None
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file or None)
        except (OSError, ssl.SSLError) as problem:
            raise ValueError(
                f"cannot be read, with its key, as a PEM certificate chain ({Path(cert_file)}): "
                f"{problem}"
            ) from None
    return context


def message(line: str) -> bytes:
    """The datagram carrying the checkpoint `line`: the line, whole, after syslog's header."""
    return f"<{PRIORITY}>{TAG}[{os.getpid()}]: {line.rstrip()}\n".encode()


def frame(line: str) -> bytes:
    """The checkpoint `line` as a stream carries it: its message's length, a space, the
    message (RFC 6587's octet counting, which RFC 5425 requires over TLS)."""
    body = message(line).rstrip(b"\n")
    return b"%d %s" % (len(body), body)


def send(address: SyslogAddress, line: str) -> None:
    """Send the checkpoint `line`; OSError when it cannot (no daemon on the socket, no route,
    a host name that does not resolve, a collector that does not answer in time or whose
    certificate does not check out). Blocks: call it off the event loop."""
    if address.transport == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix:
            unix.sendto(message(line), address.path)
        return
    if address.transport == "udp":
        family, kind, protocol, _, target = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, kind, protocol) as udp:
            udp.sendto(message(line), target)
        return
    with socket.create_connection((address.host, address.port), TIMEOUT_SECONDS) as stream:
        if address.transport == "tcp":
            stream.sendall(frame(line))
            return
        context = _tls_context(address.ca_file, address.cert_file, address.key_file)
        with context.wrap_socket(stream, server_hostname=address.host) as secure:
            secure.sendall(frame(line))
            _close(secure)


def _close(secure: ssl.SSLSocket) -> None:
    """End the session as RFC 5425 asks: close_notify, then read to the collector's answer.
    Closing at once would leave the session tickets a TLS 1.3 collector sends after its
    handshake unread, and the kernel answers unread data with a reset that can reach the
    collector before it has read the frame. A collector that closes without answering has
    read the frame first (the incomplete close the RFC allows)."""
    with contextlib.suppress(ssl.SSLEOFError):
        secure.unwrap()
