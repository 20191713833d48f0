"""Fixed-window request counters shared by every server process through PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_HIT = text(
    """
    INSERT INTO rate_limit_windows AS w (client_id, window_start, hits)
    VALUES (:client_id,
            to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :window) * :window), 1)
    ON CONFLICT (client_id, window_start) DO UPDATE SET hits = w.hits + 1
    RETURNING hits, extract(epoch FROM w.window_start) + :window
                    - extract(epoch FROM clock_timestamp()) AS seconds_left
    """
)
_PURGE = text(
    "DELETE FROM rate_limit_windows WHERE window_start < clock_timestamp() - interval '1 hour'"
)


async def hit(
    connection: AsyncConnection, client_id: str, window_seconds: int
) -> tuple[int, float]:
    """Count one request; return the hits so far in this window and the seconds it has left."""
    row = (await connection.execute(_HIT, {"client_id": client_id, "window": window_seconds})).one()
    return int(row.hits), float(row.seconds_left)


async def purge(connection: AsyncConnection) -> None:
    await connection.execute(_PURGE)
