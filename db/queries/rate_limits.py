"""Fixed-window request counters shared by every server process through PostgreSQL, and when
each client last wrote (for reads from a replica)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_HIT = text(
    """
    INSERT INTO rate_limit_windows AS w (client_id, window_start, hits)
    VALUES (:client_id,
            to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :window) * :window), 1)
    ON CONFLICT (client_id, window_start) DO UPDATE SET hits = w.hits + 1
    RETURNING hits, extract(epoch FROM w.window_start) + :window
                    - extract(epoch FROM clock_timestamp()) AS seconds_left,
              EXISTS (SELECT FROM client_writes c
                       WHERE c.client_id = :client_id
                         AND c.written_at > clock_timestamp() - make_interval(secs => :fresh))
                  AS wrote_recently
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
class Hit:
    hits: int
    """Requests so far in this window, this one included."""
    seconds_left: float
    """Until the window ends."""
    wrote_recently: bool
    """The client began a write within the last `fresh_seconds`."""


async def hit(
    connection: AsyncConnection, client_id: str, window_seconds: int, fresh_seconds: int
) -> Hit:
    """Count one request (one statement, so it costs a request nothing more than the count)."""
    parameters = {"client_id": client_id, "window": window_seconds, "fresh": fresh_seconds}
    row = (await connection.execute(_HIT, parameters)).one()
    return Hit(int(row.hits), float(row.seconds_left), bool(row.wrote_recently))


async def note_write(connection: AsyncConnection, client_id: str) -> None:
    """Noted before the write commits, so no later read of the client can miss it."""
    await connection.execute(_WROTE, {"client_id": client_id})


async def purge(connection: AsyncConnection) -> None:
    await connection.execute(_PURGE)
