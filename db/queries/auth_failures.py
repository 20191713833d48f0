"""Failed client authentications in fixed windows, shared by every server process through
PostgreSQL: what the token endpoint's throttle counts (auth.service)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COUNTS = text(
    """
    SELECT subject, failures,
           extract(epoch FROM window_start) + :window - extract(epoch FROM clock_timestamp())
             AS seconds_left
      FROM auth_failures
     WHERE subject IN (:client, :address) AND window_start =
           to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :window) * :window)
    """
)
_FAILED = text(
    """
    INSERT INTO auth_failures AS f (subject, window_start, failures)
    SELECT subject,
           to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :window) * :window), 1
      FROM (VALUES (:client), (:address)) AS attempt (subject)
    ON CONFLICT (subject, window_start) DO UPDATE SET failures = f.failures + 1
    """
)
_PURGE = text("DELETE FROM auth_failures WHERE window_start < clock_timestamp() - interval '1 day'")


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who is trying: a client id and the address it comes from, as separate subjects."""

    client: str
    address: str

    def parameters(self, window_seconds: int) -> dict[str, object]:
        return {
            "client": f"client:{self.client}",
            "address": f"address:{self.address}",
            "window": window_seconds,
        }


@dataclass(frozen=True, slots=True)
class Failures:
    by_client: int
    by_address: int
    seconds_left: float
    """Until the current window ends."""


async def counted(connection: AsyncConnection, attempt: Attempt, window_seconds: int) -> Failures:
    """The failures of the attempt's client id and address in the current window."""
    parameters = attempt.parameters(window_seconds)
    rows = (await connection.execute(_COUNTS, parameters)).all()
    found = {row.subject: int(row.failures) for row in rows}
    left = max((float(row.seconds_left) for row in rows), default=float(window_seconds))
    return Failures(found.get(parameters["client"], 0), found.get(parameters["address"], 0), left)


async def failed(connection: AsyncConnection, attempt: Attempt, window_seconds: int) -> None:
    await connection.execute(_FAILED, attempt.parameters(window_seconds))


async def purge(connection: AsyncConnection) -> None:
    await connection.execute(_PURGE)
