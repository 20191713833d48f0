"""Wakes a process's subscriptions when a transaction that changed records commits anywhere.

One connection per process LISTENs on `sinergi_changes`, which migration 0014's commit stamp
NOTIFYs; PostgreSQL delivers a notification only once its transaction has committed. Nothing
depends on a notification arriving: a subscriber reads from its own cursor each time it wakes,
and wakes at least every few seconds anyway, so a lost connection costs latency, not changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

logger = logging.getLogger("sinergi.changes")

CHANNEL = "sinergi_changes"


class ChangeSignal:
    def __init__(self, database_url: str) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        self._connection: asyncpg.Connection | None = None
        self._connecting = asyncio.Lock()
        self._changed = asyncio.Event()
        self.generation = 0
        """Counts the notifications seen: a waiter that read it before its last query returns
        at once if it moved since, so a commit between that query and the wait is not slept
        through."""

    async def listen(self) -> None:
        """Start listening, if this process is not already (again, after a lost connection)."""
        async with self._connecting:
            if self._connection is not None and not self._connection.is_closed():
                return
            try:
                connection = await asyncpg.connect(self._dsn)
                await connection.add_listener(CHANNEL, self._notified)
            except (OSError, asyncpg.PostgresError) as error:
                logger.warning("cannot listen for changes, polling: %s", error)
                return
            connection.add_termination_listener(self._lost)
            self._connection = connection

    async def wait_after(self, seen: int, *, at_most: float) -> None:
        """Return once a notification came after generation `seen`, or after `at_most` s."""
        await self.listen()
        if self.generation != seen:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), at_most)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _notified(self, *_: Any) -> None:
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _lost(self, _: Any) -> None:
        self._connection = None
        self._notified()  # subscribers read once more, and the next wait listens again
