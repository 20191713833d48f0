"""A subscription stuck sending to a client that does not read, once the client is revoked:
the connection's watch looks at the token whether or not subscriptions run, and ends the
connection without waiting for the client to read (sinergi.graphql_app `_cut`)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import asyncpg
import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from sinergi import subscriptions
from sinergi.cli import main
from tests.support.clients import registered
from tests.support.served import served

SUBSCRIBE = "subscription { msmeChanges { entries { id record } endCursor } }"
NOTICED = re.compile(r'^sinergi_errors_total\{code="UNAUTHENTICATED",status="ws"\} (\S+)$', re.M)
DELIVERED = (
    "SELECT count(*) FROM audit_log WHERE client_id = $1"
    " AND entry -> 'fields' ? 'Subscription.msmeChanges'"
)


@pytest.fixture(scope="module")
def live(module_reference_url: str) -> Iterator[str]:
    with served(module_reference_url, "production") as base:
        yield base


def _sql(url: str, statement: str, *args: Any) -> Any:
    async def run() -> Any:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(statement, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


def _revoke(url: str, client_id: str) -> None:
    """`sinergi clients revoke`, which returns once every server process has forgotten the
    client."""
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        assert main(["clients", "revoke", client_id]) == 0, out.getvalue()


def _lapses_noticed(base: str) -> float:
    """How many WebSocket tokens the server has refused, lapsed ones included."""
    found = NOTICED.search(httpx.get(f"{base}/metrics").text)
    return float(found.group(1)) if found else 0.0


def _settled(url: str, client_id: str, seconds: float = 2) -> bool:
    """Whether the client's subscription has delivered pages, and no more for `seconds`."""
    before = _sql(url, DELIVERED, client_id)
    time.sleep(seconds)
    return bool(before) and _sql(url, DELIVERED, client_id) == before


def _until(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


class _Reader:
    """A graphql-transport-ws client over a plain socket, reading only when asked: a client
    library reads on its own, into memory, whether or not its application does."""

    def __init__(self, base: str) -> None:
        uri = parse_uri(base.replace("http://", "ws://") + "/graphql")
        self.protocol = ClientProtocol(
            uri, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None
        )
        self.socket = socket.socket()
        # A small receive buffer, which the kernel does not grow while nothing is read.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)
        self.socket.connect((uri.host, uri.port))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.events: list[Any] = []
        self.ended = False
        while not self.events:  # the handshake's response
            self._read(10)
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc
        self.events.clear()

    def _flush(self) -> None:
        with contextlib.suppress(OSError):  # the server may have gone
            self.socket.sendall(b"".join(self.protocol.data_to_send()))

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self._flush()

    def receive(self, seconds: float) -> dict[str, Any] | None:
        """The next message, or None once the connection has ended, closed or dropped."""
        while True:
            while self.events:
                event = self.events.pop(0)
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    return dict(json.loads(event.data))
            if self.ended:
                return None
            self._read(seconds)

    def _read(self, seconds: float) -> None:
        self.socket.settimeout(seconds)
        data = self.socket.recv(1 << 20)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
            self.ended = True
        self._flush()  # a pong, the reply to a close
        self.events.extend(self.protocol.events_received())


def test_a_revoked_client_whose_subscription_is_stuck_sending_is_cut(
    live: str, module_reference_url: str
) -> None:
    """A client that stopped reading holds its subscription in a send; revoked, it kept the
    socket (20 s later it was still open while HTTP answered 401), and reading again brought
    the page that had waited in the send, and `complete` and the 4403 behind it. Now the
    server notices the revocation within a round of its watch, stops the subscription, send
    and all, and ends the connection: reading again brings only what had gone out before the
    revocation, then the connection drops (no close frame can be sent past what the client
    left unread), and nothing more is audited."""
    url = module_reference_url
    client = registered(url, "Lambat", purpose="stuck", scopes="records:read")
    _sql(
        url,
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code) SELECT '99924' || lpad(g::text, 8, '0'), 'Usaha lambat ' || g"
        " || repeat('x', 400), '10794', 'C', 'micro', '62', '62.71'"
        " FROM generate_series(1, 30000) g",
    )
    issued = httpx.post(
        f"{live}/oauth/token", data={"grant_type": "client_credentials"}, auth=client
    )
    token = issued.json()["access_token"]
    reader = _Reader(live)
    reader.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert (reader.receive(10) or {}).get("type") == "connection_ack"
    reader.send({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    # Not reading: the subscription fills the buffers, then waits in a send.
    assert _until(lambda: _settled(url, client[0]), 60)
    noticed = _lapses_noticed(live)
    _revoke(url, client[0])
    assert _until(lambda: _lapses_noticed(live) > noticed, 30), "the revocation went unnoticed"
    audited = _sql(url, DELIVERED, client[0])
    assert audited < 30, "every page went out before the revocation: nothing was stuck"
    # The watch gives the subscription a round to end on its own, then as long for its close
    # to be sent: timers, which run whatever the machine's load.
    time.sleep(2 * subscriptions.RECHECK_SECONDS + 6)
    messages = []
    while (message := reader.receive(30)) is not None:
        messages.append(message)
    assert {message["type"] for message in messages} <= {"next"}, messages[-1]
    assert len(messages) <= audited
    assert reader.protocol.close_code == 1006  # dropped: no `complete`, no close frame
    assert _sql(url, DELIVERED, client[0]) == audited
