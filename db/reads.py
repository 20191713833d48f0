"""Where a request's reads go: a read replica when one is configured and answering, else the
primary, which also serves a client whose own writes the replica may not have replayed yet."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver import Pooled, check_out
from db.errors import is_unavailable

logger = logging.getLogger("sinergi.replica")

Opened = TypeVar("Opened")

RETRY_SECONDS = 5.0
"""How long reads stay on the primary after the replica could not be reached."""


class Replica:
    """A read replica shared by a process's requests, and whether it could be reached lately."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._unreachable_until = 0.0

    @property
    def reachable(self) -> bool:
        return time.monotonic() >= self._unreachable_until

    def unreachable(self, error: BaseException) -> None:
        if self.reachable:
            logger.warning("reading from the primary for %.0f s: %s", RETRY_SECONDS, error)
        self._unreachable_until = time.monotonic() + RETRY_SECONDS


class Reads:
    """One request's reads: from the replica, unless the client's own writes may not have reached
    it yet (it wrote recently, or during this request) or the replica cannot be reached."""

    __slots__ = ("_primary", "_replica")

    def __init__(self, primary: AsyncEngine, replica: Replica | None = None) -> None:
        self._primary = primary
        self._replica = replica

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        connection = await self._open(_started)
        try:
            yield connection
        finally:
            await connection.close()

    @asynccontextmanager
    async def checked_out(self) -> AsyncIterator[Pooled]:
        """As `connect`, a connection for db/driver.py's statements alone."""
        async with await self._open(check_out) as pooled:
            yield pooled

    async def _open(self, open_on: Callable[[AsyncEngine], Awaitable[Opened]]) -> Opened:
        """A connection opened by `open_on` on the replica, or on the primary when the replica
        is not to be used or cannot be reached."""
        replica = self._replica
        if replica is not None and replica.reachable:
            try:
                return await open_on(replica.engine)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                replica.unreachable(error)
        return await open_on(self._primary)

    def after_write(self) -> None:
        """The rest of the request reads what it wrote: from the primary."""
        self._replica = None


async def _started(engine: AsyncEngine) -> AsyncConnection:
    connection = engine.connect()
    await connection.start()
    return connection
