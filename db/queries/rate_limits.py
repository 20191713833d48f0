"""Fixed-window request counters shared by every server process through PostgreSQL, and when
each client last wrote (for reads from a replica).

The statement that counts a request also reads its client's registration: every request needs
both, and one round trip costs a request less than two."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries import Record

_HIT = text(
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
           EXISTS (SELECT FROM client_writes c
                    WHERE c.client_id = :client_id
                      AND c.written_at > clock_timestamp() - make_interval(secs => :fresh))
               AS wrote_recently,
           registered.client_id, registered.name, registered.org_kind, registered.jurisdiction,
           registered.scopes, registered.purpose, registered.revoked_at
      FROM counted LEFT JOIN oauth_clients AS registered ON registered.client_id = :client_id
    """
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
    """How recent a write makes the client's reads go to the primary."""


@dataclass(frozen=True, slots=True)
class Hit:
    hits: int
    """Requests so far in this window, this one included."""
    seconds_left: float
    """Until the window ends."""
    wrote_recently: bool
    """The client began a write within the window's `fresh_seconds`."""
    registered: Record | None
    """The client's row in the registry (None for a client of an external issuer): the token
    check reads it on every request too, so both cost one round trip."""


async def hit(connection: AsyncConnection, client_id: str, window: Window) -> Hit:
    """Count one request, and read its client's registration, in one statement."""
    parameters = {"client_id": client_id, "window": window.seconds, "fresh": window.fresh_seconds}
    row = (await connection.execute(_HIT, parameters)).one()
    return Hit(
        int(row.hits),
        float(row.seconds_left),
        bool(row.wrote_recently),
        None if row.client_id is None else row,
    )


async def note_write(connection: AsyncConnection, client_id: str) -> None:
    """Noted before the write commits, so no later read of the client can miss it."""
    await connection.execute(_WROTE, {"client_id": client_id})


async def purge(connection: AsyncConnection) -> None:
    await connection.execute(_PURGE)
