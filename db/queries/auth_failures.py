"""Failed client authentications in fixed windows, shared by every server process through
PostgreSQL: what the token endpoint's throttle counts (auth.service).

An attempt is counted as failed before its secret is checked, in one statement that adds it and
returns the totals with it (`reserve`): attempts arriving together cannot all read a count under
the limit and all go on to check a secret, in one process or many. One refused for being over
the limit, or whose secret was right, is taken back (`take_back`). A client id's success (its
secret found right, whether a token follows or its scope is refused or no key signs) from an
address is kept as a row of its own (`succeeded`, its count of successes in the window), so
that the throttle can tell its owner from whoever else shares the address (`succeeded_since`),
and so is the client id's count of successes from anywhere (`issued`), which caps the scrypts
of right secrets, and so the tokens, one client is given in a window.

An attempt counts under three subjects: its client id from its address, its client id from
anywhere, and its address for any client id, an IPv6 address counted as its /64
(`counted_address`). Both statements lock them in that order, so two
attempts sharing rows wait for each other rather than deadlock. A subject is stored as the
SHA-256 of its text: the primary key's index refuses a row over about 2.7 KB, and a client id or
a forwarded address is whatever the caller sent.

A count saturates at the integer's maximum rather than overflow, and is never negative (a CHECK
of the owner's, migration 0063, and a take-back stopping at zero): the service's role may write
these rows, and a count planted at the largest integer made the next attempt's addition fail,
so that the right secret was answered 500 (db/queries/counts.py). Every window the service
counts in begins at or before the database's clock, so a purge drops any row of a window yet to
come as well: planted, it would refuse a client after the service's credentials were rotated.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries.counts import COUNT_MAX
from domain.addresses import ip_address

_RESERVE = text(
    """
    WITH this_window AS (
      SELECT to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :window) * :window)
               AS window_start)
    INSERT INTO auth_failures AS f (subject, window_start, failures)
    SELECT attempt.subject, this_window.window_start, 1
      FROM this_window,
           (VALUES (1, :client_address), (2, :client), (3, :address)) AS attempt (rank, subject)
     ORDER BY attempt.rank
    ON CONFLICT (subject, window_start)
      DO UPDATE SET failures = LEAST(f.failures::bigint + 1, :count_max)::integer
    RETURNING subject, failures, window_start,
              extract(epoch FROM window_start) + :window - extract(epoch FROM clock_timestamp())
                AS seconds_left
    """
)
_TAKE_BACK = text(
    """
    INSERT INTO auth_failures AS f (subject, window_start, failures)
    SELECT attempt.subject, CAST(:window_start AS timestamptz), 0
      FROM (VALUES (1, :client_address), (2, :client), (3, :address))
             AS attempt (rank, subject)
     ORDER BY attempt.rank
    ON CONFLICT (subject, window_start) DO UPDATE SET failures = GREATEST(f.failures - 1, 0)
    """
)
_SUCCEEDED = text(
    """
    INSERT INTO auth_failures AS f (subject, window_start, failures)
    SELECT success.subject, CAST(:window_start AS timestamptz), 1
      FROM (VALUES (1, :success), (2, :issued)) AS success (rank, subject)
     ORDER BY success.rank
    ON CONFLICT (subject, window_start)
      DO UPDATE SET failures = LEAST(f.failures::bigint + 1, :count_max)::integer
    """
)
_ISSUED = text(
    """
    SELECT coalesce(max(failures), 0) FROM auth_failures
     WHERE subject = :issued AND window_start = CAST(:window_start AS timestamptz)
    """
)
_SUCCEEDED_SINCE = text(
    """
    SELECT EXISTS (
      SELECT FROM auth_failures
       WHERE subject = :success
         AND window_start >= CAST(:window_start AS timestamptz) - make_interval(secs => :seconds))
    """
)
_PURGE = text(
    "DELETE FROM auth_failures"
    " WHERE window_start < clock_timestamp() - make_interval(secs => :seconds)"
    " OR window_start > clock_timestamp()"
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who is trying: a client id and the address it comes from. The pair's subject is JSON,
    so no client id, however chosen, names another client's pair, and never begins as the
    others do. The pair, and a success, keep the full address: only the address's own limit
    counts a whole /64 as one caller."""

    client: str
    address: str

    def subjects(self) -> dict[str, str]:
        named = {
            "client_address": "client+address:" + json.dumps([self.client, self.address]),
            "client": f"client:{self.client}",
            "address": f"address:{counted_address(self.address)}",
        }
        return {kind: _digest(subject) for kind, subject in named.items()}

    def success_subject(self) -> str:
        return _digest("success:" + json.dumps([self.client, self.address]))

    def issued_subject(self) -> str:
        return _digest(f"issued:{self.client}")


def counted_address(address: str) -> str:
    """What the per-address limit counts an address as. An IPv6 address as its /64: a host is
    commonly given a whole /64 and picks any address in it, so counted one by one its guesses
    had no limit, and could keep every secret check busy (503 for everyone). An IPv4-mapped
    one (::ffff:a.b.c.d, as a dual-stack socket reports an IPv4 peer) as that IPv4 address,
    so it shares the IPv4 caller's count rather than all of IPv4's /64. Anything else, IPv4
    or text that is no address ("unknown", a forwarded value), as it is."""
    parsed = ip_address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))


def _digest(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Reservation:
    """An attempt counted as failed, and the totals of its window with it counted."""

    attempt: Attempt
    window_start: datetime
    by_client_address: int
    by_client: int
    by_address: int
    seconds_left: float
    """Until the window ends."""


async def reserve(
    connection: AsyncConnection, attempt: Attempt, window_seconds: int
) -> Reservation:
    """Count the attempt as failed in the current window, before its secret is checked."""
    subjects = attempt.subjects()
    rows = (
        await connection.execute(
            _RESERVE, {**subjects, "window": window_seconds, "count_max": COUNT_MAX}
        )
    ).all()
    found = {row.subject: int(row.failures) for row in rows}
    return Reservation(
        attempt,
        rows[0].window_start,
        by_client_address=found[subjects["client_address"]],
        by_client=found[subjects["client"]],
        by_address=found[subjects["address"]],
        seconds_left=float(rows[0].seconds_left),
    )


async def take_back(connection: AsyncConnection, reservation: Reservation) -> None:
    """Uncount a reserved attempt, in the window it was counted in (which may have ended)."""
    parameters = {**reservation.attempt.subjects(), "window_start": reservation.window_start}
    await connection.execute(_TAKE_BACK, parameters)


async def succeeded(connection: AsyncConnection, reservation: Reservation) -> None:
    """Keep that the attempt's secret was right (whatever it is answered next: a token, or a
    scope or signing refused), in the window it was counted in: from its address
    (`succeeded_since`), and for its client id from anywhere (`issued`)."""
    attempt = reservation.attempt
    parameters = {
        "success": attempt.success_subject(),
        "issued": attempt.issued_subject(),
        "window_start": reservation.window_start,
        "count_max": COUNT_MAX,
    }
    await connection.execute(_SUCCEEDED, parameters)


async def issued(connection: AsyncConnection, reservation: Reservation) -> int:
    """How many times the attempt's client id had its secret right in the attempt's window, from
    any address: each a token issued, or refused only after the check."""
    parameters = {
        "issued": reservation.attempt.issued_subject(),
        "window_start": reservation.window_start,
    }
    return int((await connection.execute(_ISSUED, parameters)).scalar_one())


async def succeeded_since(
    connection: AsyncConnection, reservation: Reservation, seconds: int
) -> bool:
    """Whether the attempt's client id succeeded from its address in a window that began at most
    `seconds` before the attempt's."""
    parameters = {
        "success": reservation.attempt.success_subject(),
        "window_start": reservation.window_start,
        "seconds": seconds,
    }
    return bool((await connection.execute(_SUCCEEDED_SINCE, parameters)).scalar_one())


async def purge(connection: AsyncConnection, seconds: int) -> None:
    """Delete the rows of windows that began over `seconds` ago: failures and successes alike,
    so `seconds` must outlast what `succeeded_since` looks back over; and those of windows yet
    to begin, which the service never counts in."""
    await connection.execute(_PURGE, {"seconds": seconds})
