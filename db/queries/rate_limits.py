"""Fixed-window request counters shared by every server process through PostgreSQL, and when
each client last wrote (for reads from a replica).

Processes count requests on their own and add their counts here in batches (sinergi/rate_limit.py
says when): one statement adds any number of clients' counts and returns the totals, which
include every other process's.

A total saturates at the integer's maximum rather than overflow, and is never negative (a CHECK
of the owner's, migration 0063): the service's role may write these rows, and one count planted
at the largest integer made the next addition fail (db/queries/counts.py); a negative one
lifted the client's limit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import driver
from db.queries.counts import COUNT_MAX

CLOCK_SKEW_SECONDS = 60
"""How far a server's clock may run ahead of the database's (the servers and PostgreSQL keep
NTP-synchronised clocks, README): a server counts in the window its own clock is in, so a row
may begin up to this far after the database's clock, and a purge keeps it. Not a window: with a
window of a second, a server a few seconds ahead had its live count purged and its clients
admitted again; with one of a year, a row planted for the next window outlived every purge."""

_ADD = driver.DriverStatement(
    text(
        """
    INSERT INTO rate_limit_windows AS w (client_id, window_start, window_seconds, hits)
    SELECT client_id, to_timestamp(window_index * :window), CAST(:window AS integer), hits
      FROM unnest(CAST(:client_ids AS text[]), CAST(:window_indexes AS bigint[]),
                  CAST(:hits AS integer[])) AS counted (client_id, window_index, hits)
    ON CONFLICT (client_id, window_start)
      DO UPDATE SET hits = LEAST(w.hits::bigint + EXCLUDED.hits, :count_max)::integer,
                    window_seconds = GREATEST(w.window_seconds, EXCLUDED.window_seconds)
    RETURNING client_id, (extract(epoch FROM window_start) / :window)::bigint AS window_index, hits
    """
    )
)
_CLIENT = driver.DriverStatement(
    text(
        """
    SELECT (SELECT extract(epoch FROM clock_timestamp() - c.written_at) FROM client_writes c
             WHERE c.client_id = :client_id) AS seconds_since_write,
           registered.client_id, registered.name, registered.org_kind, registered.jurisdiction,
           registered.scopes, registered.purpose, registered.revoked_at
      FROM (SELECT 1) AS one LEFT JOIN oauth_clients AS registered
        ON registered.client_id = :client_id
    """
    )
)
_PURGE = driver.DriverStatement(
    text(
        """
    DELETE FROM rate_limit_windows
     WHERE window_start < clock_timestamp() - interval '1 hour'
                          - make_interval(secs => coalesce(window_seconds, :window))
        OR window_start > clock_timestamp() + make_interval(secs => :skew)
    """
    )
)
_WROTE = text(
    """
    INSERT INTO client_writes (client_id, written_at) VALUES (:client_id, clock_timestamp())
    ON CONFLICT (client_id) DO UPDATE SET written_at = EXCLUDED.written_at
    """
)


@dataclass(frozen=True, slots=True)
class Count:
    """Requests of one client in one window (its index: the window's start ÷ its length)."""

    client_id: str
    window_index: int
    hits: int


async def add(
    connection: driver.Pooled, window_seconds: int, counts: Sequence[Count]
) -> list[Count]:
    """Add `counts` to the shared counters; the totals after, every process's requests in."""
    rows = await driver.fetch(
        connection,
        _ADD,
        {
            "window": window_seconds,
            "client_ids": [count.client_id for count in counts],
            "window_indexes": [count.window_index for count in counts],
            "hits": [count.hits for count in counts],
            "count_max": COUNT_MAX,
        },
    )
    return [Count(row.client_id, int(row.window_index), int(row.hits)) for row in rows]


@dataclass(frozen=True, slots=True)
class ClientRow:
    registered: driver.Row | None
    """The client's row in the registry (None for a client of an external issuer)."""
    seconds_since_write: float
    """Since the client's last write note (infinite when it has none)."""


async def client(connection: driver.Pooled, client_id: str) -> ClientRow:
    """A client's registration and its last write note, in one statement (on asyncpg itself:
    db/driver.py)."""
    (row,) = await driver.fetch(connection, _CLIENT, {"client_id": client_id})
    since = math.inf if row.seconds_since_write is None else float(row.seconds_since_write)
    return ClientRow(None if row.client_id is None else row, since)


async def note_write(connection: AsyncConnection, client_id: str) -> None:
    """Noted before the write commits, so no later read of the client can miss it."""
    await connection.execute(_WROTE, {"client_id": client_id})


async def purge(connection: driver.Pooled, window_seconds: int) -> None:
    """Drop the windows over for an hour, each by the length its row records (migration 0064):
    one taken by `window_seconds`, the purging process's, while another process counts a longer
    window (a change of the setting rolling out) took that window's live count, and its client
    was admitted to the limit again. A row without a length, added by the previous release,
    is taken to be of `window_seconds`. Drop too those beginning more than CLOCK_SKEW_SECONDS
    after the database's clock: no process counts there, so such a row was planted by whoever
    held the service's credentials, to refuse a client in windows to come, after those
    credentials are rotated."""
    parameters = {"window": window_seconds, "skew": CLOCK_SKEW_SECONDS}
    await driver.fetch(connection, _PURGE, parameters)
