"""One connection per process that LISTENs to PostgreSQL's notifications, and says whether it is.

What a process caches on the strength of notifications (auth/registry.py) is sound only while
it is listening: a notification sent while the connection was down is lost. So the subscriber
is told each time listening starts (it must forget everything it holds: it may have missed
changes) and each time it stops (it must stop trusting what it holds until it starts again).
A dropped connection is noticed at once when the socket closes, and within `check_seconds` when
the server stops answering without closing it; it is then opened again every `check_seconds`
until the database answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

logger = logging.getLogger("sinergi.notifications")

OnNotice = Callable[[str], None]
OnListening = Callable[[bool], None]


def libpq_url(url: URL) -> str:
    """An engine's URL as asyncpg's own `connect` reads it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(
        self,
        url: str,
        channel: str,
        *,
        on_notice: OnNotice,
        on_listening: OnListening,
        check_seconds: float = 1.0,
        connect_timeout_seconds: float = 3.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.on_notice = on_notice
        self.on_listening = on_listening
        self.check_seconds = check_seconds
        self.connect_timeout = connect_timeout_seconds

    async def run(self) -> None:
        """Listen until cancelled, reconnecting whenever the connection is lost."""
        warned = False
        while True:
            try:
                await self._listen(again=warned)
                warned = False
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: try again shortly
                if not warned:
                    logger.warning("not listening to %s: %s", self.channel, error)
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
            await connection.add_listener(self.channel, self._notified)
            self.on_listening(True)
            if again:
                logger.warning("listening to %s again", self.channel)
            await self._watch(connection, lost)
        finally:
            self.on_listening(False)
            connection.terminate()

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is lost: closed, or silent for `check_seconds`."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), self.check_seconds)
                return
            except TimeoutError:
                pass
            await connection.fetchval("SELECT 1", timeout=self.check_seconds)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.on_notice(payload)
