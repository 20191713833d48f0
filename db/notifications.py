"""One connection per process that LISTENs to PostgreSQL's notifications, and tells each channel's
subscriber whether it is listening.

Four things in a process act on notifications: the client registry (auth/registry.py, channel
`sinergi_clients`), the change feed's subscriptions (db/change_signal.py, `sinergi_changes`), the
signing keys (auth/keyring.py, `sinergi_keys`) and the figure cache (schema/figure_cache.py,
`sinergi_releases`, sent by db/releases.py). The first two once had a connection each;
the feed's was opened lazily by the first subscription, with no connect timeout and no check that
the server still answered. None needs its own: each only needs to hear its channel's payloads
and to know when listening stops and starts, so one connection LISTENs on every channel, and
each subscriber gets its own channel's notices.

What a subscriber holds on the strength of notifications is sound only while the connection
listens: a notification sent while it was down is lost. So every subscriber is told each time
listening starts (it may have missed changes) and each time it stops (it must not count on
notifications until it starts again). A dropped connection is noticed at once when the socket
closes, and within `check_seconds` when the server stops answering without closing it; it is
then opened again every `check_seconds` until the database answers.

A command that must know a change has been applied everywhere (`sinergi clients revoke`) asks
for confirmation after committing it (`confirm`): on `CONFIRM` it sends a channel, a payload and
a token; every listener hands the payload to that channel's subscriber, as any notification of
the channel, and then NOTIFYs the token on `CONFIRMED`. Only these requests are acknowledged: the
channels' own notifications (a write note on every write) cost no statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from sqlalchemy.engine import URL

logger = logging.getLogger("sinergi.notifications")

CONFIRM = "sinergi_confirm"
"""Requests to apply a notification and say so; payload `TOKEN CHANNEL PAYLOAD`."""
CONFIRMED = "sinergi_confirmed"
"""Each listener's acknowledgement of a request: its TOKEN, from the listener's own session."""
LISTENER_NAME = "sinergi-listener"
"""The listener's `application_name`, set once it listens: how `confirm` finds listeners in
pg_stat_activity, whose `pid`, `datname` and `application_name` every role may read."""


class Subscriber(Protocol):
    """What one channel's notifications are handed to."""

    def changed(self, payload: str, /) -> None:
        """A notification on the channel, with its payload."""

    def listening(self, listening: bool, /) -> None:
        """Listening started (True) or stopped (False)."""


def libpq_url(url: URL) -> str:
    """An engine's URL as asyncpg's own `connect` reads it: as libpq does, so with `sslmode`
    where the engine's has SQLAlchemy's `ssl` (read as a server setting otherwise)."""
    query = dict(url.query)
    if "ssl" in query and "sslmode" not in query:
        query["sslmode"] = query.pop("ssl")
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class Listener:
    def __init__(
        self,
        url: str,
        subscribers: Mapping[str, Subscriber],
        *,
        check_seconds: float = 1.0,
        connect_timeout_seconds: float = 3.0,
    ) -> None:
        """`subscribers`: who hears each channel."""
        self.url = url
        self.subscribers = dict(subscribers)
        self.check_seconds = check_seconds
        self.connect_timeout = connect_timeout_seconds
        self._wake = asyncio.Event()
        """Set when an acknowledgement is queued or the connection is lost."""
        self._unsent: deque[str] = deque()
        """Tokens of confirmation requests applied and not yet acknowledged."""

    async def run(self) -> None:
        """Listen until cancelled, reconnecting whenever the connection is lost."""
        warned = False
        channels = ", ".join(self.subscribers)
        while True:
            try:
                await self._listen(again=warned)
                warned = False
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: try again shortly
                if not warned:
                    logger.warning("not listening to %s: %s", channels, error)
                    warned = True
            await asyncio.sleep(self.check_seconds)

    async def _listen(self, *, again: bool) -> None:
        """One connection's life: listening until it is lost."""
        lost = asyncio.Event()
        self._unsent.clear()  # a lost connection's: acknowledged by its session or not at all
        connection = await asyncpg.connect(self.url, timeout=self.connect_timeout)
        try:

            def terminated(_: object) -> None:
                lost.set()
                self._wake.set()

            connection.add_termination_listener(terminated)
            for channel in [*self.subscribers, CONFIRM]:
                await connection.add_listener(channel, self._notified)
            # Named only once it listens, and before any subscriber holds anything: a process
            # whose listener `confirm` cannot see holds nothing it read before the name was set.
            await connection.execute(f"SET application_name = '{LISTENER_NAME}'")
            self._tell(listening=True)
            if again:
                logger.warning("listening to %s again", ", ".join(self.subscribers))
            await self._watch(connection, lost)
        finally:
            self._tell(listening=False)
            connection.terminate()

    def _tell(self, *, listening: bool) -> None:
        for subscriber in self.subscribers.values():
            subscriber.listening(listening)

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost: closed, or silent for `check_seconds`. Meanwhile
        send the acknowledgements `_notified` queued, here alone: a connection runs one
        statement at a time."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(self._wake.wait(), self.check_seconds)
            except TimeoutError:
                await connection.fetchval("SELECT 1", timeout=self.check_seconds)
                continue
            self._wake.clear()
            while self._unsent and not lost.is_set():
                await connection.execute(
                    "SELECT pg_notify($1, $2)",
                    CONFIRMED,
                    self._unsent.popleft(),
                    timeout=self.check_seconds,
                )

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        if channel == CONFIRM:
            token, _, rest = payload.partition(" ")
            channel, _, payload = rest.partition(" ")
            if channel not in self.subscribers:
                return  # nothing applied here, so nothing to acknowledge
            self._unsent.append(token)
            self._wake.set()
        # Applied when `changed` returns (subscribers do not wait), before the acknowledgement
        # queued above is sent.
        self.subscribers[channel].changed(payload)


@dataclass(frozen=True, slots=True)
class Confirmation:
    listening: int
    """Listeners that were listening when the request was sent (one per server process)."""
    confirmed: int
    """Those of them that acknowledged it in time."""

    @property
    def complete(self) -> bool:
        return self.confirmed == self.listening


_LISTENERS = """
    SELECT pid FROM pg_stat_activity
     WHERE application_name = $1 AND datname = current_database()
"""


async def confirm(url: str, channel: str, payload: str, *, timeout_seconds: float) -> Confirmation:
    """Have every listening process apply `payload` as a notification on `channel`, and wait
    until each says it has, at most `timeout_seconds`. Sent after a change commits, it tells
    when no process still holds what the change made stale.

    The listeners counted are those named LISTENER_NAME when the request is sent: each is
    listening already, so it hears the request. A listener not named then (reconnecting, or
    starting) need not be counted: its subscribers are told `listening(True)` only after it is
    named, and they hold nothing from before being told (auth/registry.py), so whatever they
    hold was read after the change committed. A listener that loses its connection before it
    acknowledges is counted as not confirming; its process forgets everything it held once it
    notices the loss (Listener above), which may be seconds later."""
    token = secrets.token_hex(16)
    acknowledged: set[int] = set()
    heard = asyncio.Event()

    def acknowledgement(_connection: object, pid: int, _channel: str, ack: str) -> None:
        if ack == token:  # not another request's, nor an earlier one's
            acknowledged.add(pid)
            heard.set()

    connection = await asyncpg.connect(url, timeout=timeout_seconds)
    try:
        await connection.add_listener(CONFIRMED, acknowledgement)  # before anyone can answer
        listening = {row["pid"] for row in await connection.fetch(_LISTENERS, LISTENER_NAME)}
        if listening:
            await connection.execute(
                "SELECT pg_notify($1, $2)", CONFIRM, f"{token} {channel} {payload}"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while not listening <= acknowledged and loop.time() < deadline:
            heard.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), deadline - loop.time())
    finally:
        await connection.close()
    return Confirmation(len(listening), len(listening & acknowledged))
