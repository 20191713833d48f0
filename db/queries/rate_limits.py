"""Fixed-window request counters shared by every server process through PostgreSQL, and when
each client last wrote (for reads from a replica).

The statement that counts a request also reads its client's registration: every request needs
both, and one round trip costs a request less than two."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import driver

_HIT = driver.DriverStatement(
    text(
        """
    WITH counted AS (
        INSERT INTO rate_limit_windows AS w (client_id, window_start, hits)
        VALUES (:client_id,
                to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :window) * :window), 1)
        ON CONFLICT (client_id, window_start) DO UPDATE SET hits = w.hits + 1
        RETURNING hits, extract(epoch FROM w.window_start) + :window
                        - extract(epoch FROM clock_timestamp()) AS seconds_left
    )
    SELECT counted.hits, counted.seconds_left,
           (SELECT extract(epoch FROM clock_timestamp() - c.written_at) FROM client_writes c
             WHERE c.client_id = :client_id) AS seconds_since_write,
           registered.client_id, registered.name, registered.org_kind, registered.jurisdiction,
           registered.scopes, registered.purpose, registered.revoked_at
      FROM counted LEFT JOIN oauth_clients AS registered ON registered.client_id = :client_id
    """
    )
)
_PURGE = text(
    "DELETE FROM rate_limit_windows WHERE window_start < clock_timestamp() - interval '1 hour'"
)
_WROTE = text(
    """
    INSERT INTO client_writes (client_id, written_at) VALUES (:client_id, clock_timestamp())
    ON CONFLICT (client_id) DO UPDATE SET written_at = EXCLUDED.written_at
    """
)


@dataclass(frozen=True, slots=True)
class Window:
    """What a request is counted against."""

    seconds: int
    """The length of a fixed window."""
    fresh_seconds: int
    """How long after a write the client's reads stay on what cannot lag (the primary, figures
    computed afresh)."""


@dataclass(frozen=True, slots=True)
class Hit:
    hits: int
    """Requests so far in this window, this one included."""
    seconds_left: float
    """Until the window ends."""
    wrote_recently: bool
    """The client may have written within the window's `fresh_seconds`: its reads must not
    lag. True for up to twice as long, because a write need not renew a note made within half
    of it (`write_noted`)."""
    write_noted: bool
    """The client's last write note is so recent that its writes in this request need not renew
    it: the note keeps `wrote_recently` true for `fresh_seconds` after any of them."""
    registered: driver.Row | None
    """The client's row in the registry (None for a client of an external issuer): the token
    check reads it on every request too, so both cost one round trip."""


async def hit(connection: driver.Pooled, client_id: str, window: Window) -> Hit:
    """Count one request, and read its client's registration, in one statement (on asyncpg
    itself: db/driver.py)."""
    parameters = {"client_id": client_id, "window": window.seconds}
    (row,) = await driver.fetch(connection, _HIT, parameters)
    since = math.inf if row.seconds_since_write is None else float(row.seconds_since_write)
    return Hit(
        int(row.hits),
        float(row.seconds_left),
        wrote_recently=since < 2 * window.fresh_seconds,
        write_noted=since < window.fresh_seconds / 2,
        registered=None if row.client_id is None else row,
    )


async def note_write(connection: AsyncConnection, client_id: str) -> None:
    """Noted before the write commits, so no later read of the client can miss it."""
    await connection.execute(_WROTE, {"client_id": client_id})


async def purge(connection: AsyncConnection) -> None:
    await connection.execute(_PURGE)
