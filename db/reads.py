"""Where a request's reads go: a read replica when one is configured and answering, else the
primary, which also serves a client whose own writes the replica may not have replayed yet."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import releases
from db.driver import Pooled, check_out
from db.errors import (
    HeldUp,
    ReadTimedOut,
    ReplicaConflict,
    is_lock_timeout,
    is_recovery_conflict,
    is_statement_timeout,
    is_unavailable,
)

logger = logging.getLogger("sinergi.replica")

Opened = TypeVar("Opened")

RETRY_SECONDS = 5.0
"""How long reads stay on the primary after the replica could not be reached."""
CHECK_SECONDS = 1.0
"""How often each process asks how far the replica has replayed the primary's WAL."""
CHECK_TIMEOUT_SECONDS = 2 * CHECK_SECONDS
"""How long a check waits for the replica's answer before it counts as not current, and for
the primary's WAL position before it goes without that sample."""

Sample = tuple[float, int]
"""When (time.monotonic()) the primary's WAL was at which position (bytes since 0/0)."""


def replica_lag(samples: Sequence[Sample], replayed: int | None, now: float) -> float | None:
    """How old, at most, what the replica misses is: the age of the newest of the primary's
    WAL positions `samples` (oldest first) that the replica has replayed (`replayed`), since
    every commit acknowledged before that sample was taken is on the replica. None when it has
    replayed none of them: how far behind it is cannot be told, only that it is at least as
    old as the oldest sample. A server not in recovery (`replayed` None, as a plain database
    named as the replica in tests) replays nothing and lags by nothing: its lag is 0."""
    if replayed is None:
        return 0.0
    for taken, position in reversed(samples):
        if position <= replayed:
            return now - taken
    return None


Vet = Callable[[AsyncConnection], Awaitable[str | None]]
"""Why the role a connection to the replica is made as may not be read as, or None."""


class Replica:
    """A read replica shared by a process's requests, and whether it can be read lately: it
    could be reached, and it has replayed every commit the primary acknowledged more than
    `max_lag_seconds` ago (`check`). A replica whose replay stalls would otherwise go on
    serving, after a client's read-your-writes window, an owner erased or a record moved out
    of a jurisdiction to every other client, for as long as it stalls."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_lag_seconds: float,
        observe: Callable[[float | None], None] = lambda lag: None,
        vet: Vet | None = None,
    ) -> None:
        self.engine = engine
        self.max_lag_seconds = max_lag_seconds
        self._observe = observe
        """Told each check's lag (the process's metric: an idle one's would go stale); None when
        a check could not tell it (the replica unreachable, or its check failed or timed out);
        +Inf once the replica is refused (`vet`)."""
        self._vet = vet
        """Run by the first check that reaches the replica, then dropped: `serve` checks the
        replica's role only if it can reach it at start, and one it could not reach would
        otherwise be read, whatever its role, once it answers. A refusal (logged) leaves the
        replica unread for the life of the process."""
        self._refused = False
        self._unreachable_until = 0.0
        self._samples: deque[Sample] = deque(maxlen=math.ceil(max_lag_seconds / CHECK_SECONDS) + 2)
        self._current: bool | None = None  # unread until a check finds it current
        self.lag: float | None = None
        """The latest check's `replica_lag`."""

    @property
    def reachable(self) -> bool:
        return time.monotonic() >= self._unreachable_until

    @property
    def readable(self) -> bool:
        """Reachable, and current by the latest check."""
        return self._current is True and self.reachable

    def unreachable(self, error: BaseException) -> None:
        if self.reachable:
            logger.warning("reading from the primary for %.0f s: %s", RETRY_SECONDS, error)
        self._unreachable_until = time.monotonic() + RETRY_SECONDS

    async def check(self, primary: AsyncEngine) -> None:
        """Samples the primary's WAL position (`_sample`), then judges the replica's lag by what
        it has replayed: past `max_lag_seconds`, or unknown, reads go to the primary until it
        catches up. Logged once each way, from the first check that could tell: at start a
        standby that has not replayed the one sample taken just now was logged as lagging at
        every start, and stays unread without it. A replica that cannot be asked is
        unreachable; one that does not answer within CHECK_TIMEOUT_SECONDS raises
        TimeoutError. Only the replica's answer is timed: a primary whose request pool is busy
        would otherwise have the replica unread, and every read sent to that busy primary. The
        first check that reaches it vets it first (`vet`)."""
        if self._refused:
            self._observe(math.inf)
            return
        await self._sample(primary)
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            try:
                async with self.engine.connect() as connection:
                    refusal = None if self._vet is None else await self._vet(connection)
                    replayed = await connection.scalar(text(_REPLAYED))
            except Exception as error:
                if not is_unavailable(error):
                    raise
                self.unreachable(error)
                self._observe(None)
                return
        self._vet = None
        if refusal is not None:
            logger.error("not reading the replica, for good: %s; reading from the primary", refusal)
            self._refused = True
            self._current = False
            self._observe(math.inf)
            return
        self.lag = replica_lag(
            self._samples, None if replayed is None else int(replayed), time.monotonic()
        )
        if self.lag is None and len(self._samples) < 2:
            return  # the one sample was taken just now: unread, but no lag told of yet
        self._observe(self.lag)
        current = self.lag is not None and self.lag <= self.max_lag_seconds
        if current is not self._current:
            if self._current is False:
                logger.warning("the replica caught up: reading from it again")
            elif not current:
                logger.warning(
                    "the replica lags more than %g s (%s): reading from the primary",
                    self.max_lag_seconds,
                    "by an unknown time" if self.lag is None else f"{self.lag:.1f} s",
                )
        self._current = current

    async def _sample(self, primary: AsyncEngine) -> None:
        """Adds the primary's WAL position now to the samples; none when the primary cannot
        tell within CHECK_TIMEOUT_SECONDS (away, or its request pool busy, TimeoutError being an
        OSError): the replica is then judged on the samples held, which age."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                async with primary.connect() as connection:
                    position = await connection.scalar(text(_CURRENT))
        except Exception as error:
            if not is_unavailable(error):
                raise
            return
        self._samples.append((time.monotonic(), int(position)))

    async def run(self, primary: AsyncEngine) -> None:
        """`watch`, every CHECK_SECONDS until cancelled."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await self.watch(primary)

    async def watch(self, primary: AsyncEngine) -> None:
        """`check`; one that fails, or that the replica does not answer in time (one accepting
        connections but not answering, read on its last verdict while it hung), is logged
        (once while they fail), the replica is left unread until one succeeds, and its lag is
        reported unknown (the metric would show the last lag told, current, meanwhile)."""
        try:
            await self.check(primary)
            return
        except TimeoutError:
            if self._current is not False:
                logger.warning(
                    "the replica did not answer its check in %g s: reading from the primary",
                    CHECK_TIMEOUT_SECONDS,
                )
        except Exception:
            if self._current is not False:
                logger.exception("checking the replica's lag failed: reading from the primary")
        self._current = False
        self._observe(None)


_CURRENT = "SELECT pg_current_wal_lsn() - '0/0'"
_REPLAYED = "SELECT pg_last_wal_replay_lsn() - '0/0'"


class Reads:
    """One request's reads: from the replica, unless the client's own writes may not have reached
    it yet (it wrote recently, or during this request), or the replica cannot be reached or lags
    past the bound (`Replica.check`).

    A request holds at most `share`'s count of pooled connections at once; its other reads wait
    for one of its own to come back. One request of two dozen figure tables took every pooled
    connection: other clients waited out the pool timeout (503), and its own reads were queued
    behind each other past the statement timeout. A read past the statement timeout is raised
    as ReadTimedOut: the request asked for too much; one past the lock timeout as HeldUp."""

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
            connection, replica = await self._open(_started)
            try:
                with _replacing(replica):
                    yield connection
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
        async with self._share:
            pooled, replica = await self._open(check_out, primary=primary)
            async with pooled:
                with _replacing(replica):
                    yield pooled

    async def _open(
        self, open_on: Callable[[AsyncEngine], Awaitable[Opened]], *, primary: bool = False
    ) -> tuple[Opened, Replica | None]:
        """A connection opened by `open_on` on the replica, or on the primary when the replica
        is not to be used (`primary`, or the client's own writes) or cannot be reached, or lags;
        with the replica it was opened on, if it was."""
        replica = None if primary else self._replica
        if replica is not None and replica.readable:
            try:
                return await open_on(replica.engine), replica
            except Exception as error:
                if not is_unavailable(error):
                    raise
                replica.unreachable(error)
        return await open_on(self._primary), None

    def after_write(self) -> None:
        """The rest of the request reads what it wrote: from the primary."""
        self._replica = None


@contextmanager
def _replacing(replica: Replica | None) -> Iterator[None]:
    """Reads on a connection `Reads` opened, on `replica` if it was, raising in place of what
    they raise: ReadTimedOut past the statement timeout (the request asked for too much);
    HeldUp past the lock timeout (another transaction's lock held it up: the request is to be
    sent again, not made smaller); ReplicaConflict when the replica cancelled one for recovery,
    the replica then left unread for RETRY_SECONDS, so that the client's retry reads the
    primary; else what they raised."""
    try:
        yield
    except Exception as error:
        if is_statement_timeout(error):
            raise ReadTimedOut("a read ran past the statement timeout") from error
        if is_lock_timeout(error):
            raise HeldUp(
                "a read waited past the lock timeout for another transaction's lock"
            ) from error
        if replica is None or not is_recovery_conflict(error):
            raise
        conflict = ReplicaConflict(
            "the replica cancelled a read to replay the primary's changes (conflict with recovery)"
        )
        replica.unreachable(conflict)
        raise conflict from error


async def _started(engine: AsyncEngine) -> AsyncConnection:
    connection = engine.connect()
    await connection.start()
    return connection
