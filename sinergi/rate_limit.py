"""Per-client request limits that hold across every process serving the API, without a database
round trip per request.

Each process counts a client's requests in the current fixed window itself, and adds its count
to the shared counter in PostgreSQL (db/queries/rate_limits.py) every `sync_seconds`, learning
there what every other process has counted. A request is admitted on the process's own count
while the process sent its count within twice `sync_seconds` (so the total it learns is that
fresh), that total and its own count since stay under the limit, and at most an *allowance* of
its requests (1 % of the limit, at least 1) is not yet known to PostgreSQL or on its way there.
Otherwise the request is counted in PostgreSQL before it is answered, as every request once
was: a client whose requests to a process are more than twice `sync_seconds` apart is counted
exactly, and only a busy one in batches. A client known to be over the limit is refused
without any statement.

A request counts as many hits as the operations it runs: each operation of an HTTP batch, each
subscribe message of a WebSocket (and the connection itself once); otherwise a batch, or a
socket subscribing again and again, would run many times the limit. It is counted before its
documents are checked (sinergi.guard, sinergi.subscriptions), so those the checks refuse count
too, and a client over the limit cannot make a worker parse and cost them.

Worst case: every process admits at most its allowance beyond the limit, so across N processes
(instances × workers) a client gets at most N × max(1, limit ÷ 100) hits more than the limit in
a window (tests/test_shared_rate_limit.py). Argument: let T be the moment the shared count
reaches the limit. Hits counted before T are within the limit. A process's hits not yet
counted at T are within its allowance (a request whose hits would take them past it is
counted in PostgreSQL first), and it admits further ones only while the allowance holds,
until the answer to a batch PostgreSQL counted after T tells it the client is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from db.driver import check_out
from db.errors import is_lock_timeout, is_statement_timeout, is_unavailable
from db.queries import rate_limits
from sinergi.guard import Refusal

RETRY_AFTER_SECONDS = 5
SYNC_SECONDS = 0.1
PURGE_SECONDS = 300.0
logger = logging.getLogger("sinergi.rate_limit")


def service_unavailable(reason: str = "the database is unavailable") -> Refusal:
    """A Refusal, so that a WebSocket's subscribe message is refused with its errors too;
    `reason`, db.errors' `transient_reason` for what failed."""
    refusal = Refusal(
        503,
        {
            "message": f"{reason}; retry shortly",
            "extensions": {"code": "SERVICE_UNAVAILABLE"},
        },
    )
    refusal.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return refusal


def held_up() -> Refusal:
    """The request could not be counted: the shared counts were held up by another
    transaction's lock (or ran past the statement timeout behind it). Nothing of the request
    ran, so it is an outage to its client, who sends it again, not a fault of ours."""
    refusal = Refusal(
        503,
        {
            "message": "held up waiting for another transaction's lock on the request counts;"
            " nothing of this was applied: send it again after Retry-After seconds",
            "extensions": {"code": "SERVICE_UNAVAILABLE"},
        },
    )
    refusal.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return refusal


@dataclass(slots=True)
class _Counter:
    """One client's requests in one window, as this process knows them."""

    window_index: int
    known: int = 0
    """The shared total PostgreSQL last returned (every process's requests)."""
    pending: int = 0
    """Admitted here, not yet sent to PostgreSQL."""
    in_flight: int = 0
    """Sent to PostgreSQL, its total not yet returned."""
    sent_at: float = -math.inf
    """When this process last sent its count (so it learns the total when that returns)."""


class RateLimiter:
    def __init__(
        self,
        *,
        per_window: int,
        window_seconds: int,
        sync_seconds: float = SYNC_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_window = per_window
        self.window_seconds = window_seconds
        self.allowance = max(1, per_window // 100)
        self.sync_seconds = sync_seconds
        self._clock = clock
        self._counters: dict[str, _Counter] = {}

    def known_over(self, client_id: str) -> Refusal | None:
        """The 429 for a client this process already knows to be over the limit in the current
        window, else None; with no statement and before the request is read (sinergi.guard), so
        that such a client's requests cost a worker next to nothing, whatever they hold. Like
        `admit`'s own refusal of it, the request is not counted: the client is over already."""
        now = self._clock()
        index = int(now // self.window_seconds)
        counter = self._counters.get(client_id)
        if counter is None or counter.window_index != index or counter.known < self.per_window:
            return None
        return self._refusal(now, index)

    async def admit(self, engine: AsyncEngine, client_id: str, hits: int = 1) -> Refusal | None:
        """None when the request may go on; otherwise the 429 (or, database gone or the count
        held up behind a lock, 503) to send.
        `engine`: the primary, in autocommit; `hits`: the operations the request runs."""
        now = self._clock()
        index = int(now // self.window_seconds)
        counter = self._counters.get(client_id)
        if counter is None or counter.window_index != index:
            counter = self._counters[client_id] = _Counter(index)
        if counter.known >= self.per_window:
            return self._refusal(now, index)
        unsent = counter.pending + counter.in_flight
        if (
            now - counter.sent_at < 2 * self.sync_seconds
            and counter.known + unsent + hits <= self.per_window
            and unsent + hits <= self.allowance
        ):
            counter.pending += hits
            return None
        sent, counter.pending = counter.pending + hits, 0
        try:
            total = await self._send(engine, {client_id: (counter, sent)})
        except Exception as failure:
            counter.pending += sent - hits  # admitted before: still to be counted
            if is_unavailable(failure):
                return service_unavailable()
            if is_lock_timeout(failure) or is_statement_timeout(failure):
                logger.warning("a request's count was held up: %s", type(failure).__name__)
                return held_up()
            raise
        if total[client_id] > self.per_window:
            return self._refusal(now, index)
        return None

    async def run(self, engine: AsyncEngine) -> None:
        """Until cancelled: every `sync_seconds`, add what this process counted to the shared
        counters; now and then drop windows long past. `engine`: the primary, in autocommit."""
        purged = time.monotonic()
        while True:
            await asyncio.sleep(self.sync_seconds)
            try:
                await self.sync(engine)
                if time.monotonic() - purged > PURGE_SECONDS:
                    await self.purge(engine)
                    purged = time.monotonic()
            except Exception as failure:  # counted again at the next attempt
                if not is_unavailable(failure):
                    logger.exception("could not add request counts to PostgreSQL")

    async def sync(self, engine: AsyncEngine) -> None:
        """Send every count not yet sent, and learn the totals; forget windows that are over."""
        index = int(self._clock() // self.window_seconds)
        for client_id in [
            c for c, counter in self._counters.items() if counter.window_index < index
        ]:
            del self._counters[client_id]
        batch = {}
        for client_id, counter in self._counters.items():
            if counter.pending:
                batch[client_id] = (counter, counter.pending)
                counter.pending = 0
        if not batch:
            return
        try:
            await self._send(engine, batch)
        except Exception:
            for counter, hits in batch.values():
                counter.pending += hits
            raise

    async def purge(self, engine: AsyncEngine) -> None:
        """Drop the shared counters of windows over for an hour, every process's."""
        async with await check_out(engine) as connection:
            await rate_limits.purge(connection, self.window_seconds)

    async def flush(self, engine: AsyncEngine) -> None:
        """At shutdown: what this process counted is not lost to the others."""
        with contextlib.suppress(Exception):
            await self.sync(engine)

    async def _send(
        self, engine: AsyncEngine, batch: dict[str, tuple[_Counter, int]]
    ) -> dict[str, int]:
        """Add `batch`'s hits to the shared counters; each client's new total."""
        counts = [
            rate_limits.Count(client_id, counter.window_index, hits)
            for client_id, (counter, hits) in batch.items()
        ]
        sent = self._clock()
        for counter, hits in batch.values():
            counter.in_flight += hits
            counter.sent_at = sent
        try:
            async with await check_out(engine) as connection:
                totals = await rate_limits.add(connection, self.window_seconds, counts)
        finally:
            for counter, hits in batch.values():
                counter.in_flight -= hits
        for total in totals:
            counter = batch[total.client_id][0]
            counter.known = max(counter.known, total.hits)
        return {total.client_id: total.hits for total in totals}

    def _refusal(self, now: float, index: int) -> Refusal:
        retry_after = max(1, math.ceil((index + 1) * self.window_seconds - now))
        refusal = Refusal(
            429,
            {
                "message": f"rate limit of {self.per_window} requests per "
                f"{self.window_seconds} s exceeded; retry in {retry_after} s",
                "extensions": {
                    "code": "RATE_LIMITED",
                    "limit": self.per_window,
                    "windowSeconds": self.window_seconds,
                    "retryAfter": retry_after,
                },
            },
        )
        refusal.headers["Retry-After"] = str(retry_after)
        return refusal
