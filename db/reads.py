"""Where a request's reads go: a read replica when one is configured and answering, else the
primary, which also serves a client whose own writes the replica may not have replayed yet."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import releases
from db.driver import Pooled, check_out
from db.errors import ReadTimedOut, is_statement_timeout, is_unavailable

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
    it yet (it wrote recently, or during this request) or the replica cannot be reached.

    A request holds at most `share`'s count of pooled connections at once; its other reads wait
    for one of its own to come back. One request of two dozen figure tables took every pooled
    connection: other clients waited out the pool timeout (503), and its own reads were queued
    behind each other past the statement timeout. A read past the statement timeout is raised
    as ReadTimedOut: the request asked for too much."""

    __slots__ = ("_primary", "_release", "_replica", "_share")

    def __init__(
        self,
        primary: AsyncEngine,
        replica: Replica | None = None,
        share: asyncio.Semaphore | None = None,
    ) -> None:
        self._primary = primary
        self._replica = replica
        self._share: AbstractAsyncContextManager[Any] = share or nullcontext()
        self._release: asyncio.Future[releases.Release | None] | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self._share:
            connection = await self._open(_started)
            try:
                yield connection
            except Exception as error:
                if is_statement_timeout(error):
                    raise ReadTimedOut("a read ran past the statement timeout") from error
                raise
            finally:
                await connection.close()

    @asynccontextmanager
    async def released(self) -> AsyncIterator[AsyncConnection]:
        """As `connect`, its statements reading the figure release's copies of the tables they
        name (db/releases.py) rather than the live ones: the request's release (`release`)."""
        release = await self.release()
        if release is None:
            raise releases.NoRelease("no figures have been released yet")
        async with self.connect() as connection:
            await releases.enter(connection, release)
            yield connection

    async def release(self) -> releases.Release | None:
        """The figure release this request's figures are read from: the current one, read
        once for all its fields, even those resolved at the same time, so that a release made
        while the request runs does not mix two in its answer."""
        if self._release is None:
            self._release = asyncio.ensure_future(self._current_release())
        return await self._release

    @property
    def read_release(self) -> releases.Release | None:
        """The release `release` has read for this request; None while it has read none."""
        reading = self._release
        if reading is None or not reading.done() or reading.cancelled() or reading.exception():
            return None
        return reading.result()

    async def _current_release(self) -> releases.Release | None:
        async with self.connect() as connection:
            return await releases.current(connection)

    @property
    def may_lag(self) -> bool:
        """Whether reads may go to a replica, which replays the primary's commits late."""
        return self._replica is not None

    @asynccontextmanager
    async def checked_out(self, *, primary: bool = False) -> AsyncIterator[Pooled]:
        """As `connect`, a connection for db/driver.py's statements alone; on the primary
        whatever the client wrote when `primary`, for a read the replica's lag misleads."""
        async with self._share, await self._open(check_out, primary=primary) as pooled:
            try:
                yield pooled
            except Exception as error:
                if is_statement_timeout(error):
                    raise ReadTimedOut("a read ran past the statement timeout") from error
                raise

    async def _open(
        self, open_on: Callable[[AsyncEngine], Awaitable[Opened]], *, primary: bool = False
    ) -> Opened:
        """A connection opened by `open_on` on the replica, or on the primary when the replica
        is not to be used (`primary`, or the client's own writes) or cannot be reached."""
        replica = None if primary else self._replica
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
