"""Where a request's reads go: a read replica when one is configured and answering, else the
primary, which also serves a client whose own writes the replica may not have replayed yet."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver import Pooled, check_out
from db.errors import is_unavailable

logger = logging.getLogger("sinergi.replica")

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
        replica = self._replica
        if replica is not None and replica.reachable:
            connection = replica.engine.connect()
            try:
                await connection.start()
            except Exception as error:
                if not is_unavailable(error):
                    raise
                replica.unreachable(error)
            else:
                try:
                    yield connection
                finally:
                    await connection.close()
                return
        async with self._primary.connect() as connection:
            yield connection

    @asynccontextmanager
    async def checked_out(self) -> AsyncIterator[Pooled]:
        """As `connect`, a connection for db/driver.py's statements alone."""
        replica = self._replica
        if replica is not None and replica.reachable:
            try:
                pooled = await check_out(replica.engine)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                replica.unreachable(error)
            else:
                async with pooled:
                    yield pooled
                return
        async with await check_out(self._primary) as pooled:
            yield pooled

    def after_write(self) -> None:
        """The rest of the request reads what it wrote: from the primary."""
        self._replica = None
