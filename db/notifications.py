"""One connection per process that LISTENs to PostgreSQL's notifications, and tells each channel's
subscriber whether it is listening.

Two things in a process act on notifications: the client registry (auth/registry.py, channel
`sinergi_clients`) and the change feed's subscriptions (db/change_signal.py, `sinergi_changes`).
They once had a connection each; the feed's was opened lazily by the first subscription, with
no connect timeout and no check that the server still answered. Neither needs its own: both only
need to hear their channel's payloads and to know when listening stops and starts, so one
connection LISTENs on every channel, and each subscriber gets its own channel's notices.

What a subscriber holds on the strength of notifications is sound only while the connection
listens: a notification sent while it was down is lost. So every subscriber is told each time
listening starts (it may have missed changes) and each time it stops (it must not count on
notifications until it starts again). A dropped connection is noticed at once when the socket
closes, and within `check_seconds` when the server stops answering without closing it; it is
then opened again every `check_seconds` until the database answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

import asyncpg
from sqlalchemy.engine import URL

logger = logging.getLogger("sinergi.notifications")


class Subscriber(Protocol):
    """What one channel's notifications are handed to."""

    def changed(self, payload: str, /) -> None:
        """A notification on the channel, with its payload."""

    def listening(self, listening: bool, /) -> None:
        """Listening started (True) or stopped (False)."""


def libpq_url(url: URL) -> str:
    """An engine's URL as asyncpg's own `connect` reads it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


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
        connection = await asyncpg.connect(
            self.url,
            timeout=self.connect_timeout,
            server_settings={"application_name": "sinergi-listener"},
        )
        try:
            connection.add_termination_listener(lambda _: lost.set())
            for channel in self.subscribers:
                await connection.add_listener(channel, self._notified)
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
        """Return when the connection is lost: closed, or silent for `check_seconds`."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), self.check_seconds)
                return
            except TimeoutError:
                pass
            await connection.fetchval("SELECT 1", timeout=self.check_seconds)

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        self.subscribers[channel].changed(payload)
