"""Telling "the database is not there" apart from every other database error.

An outage (server stopped, restarting, unreachable, connection dropped, pool exhausted) is not the
caller's fault and not a bug: it is answered SERVICE_UNAVAILABLE so clients retry, whereas a bad
statement stays an INTERNAL error. One predicate, used by every layer that answers requests.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc

_OUTAGES = (
    exc.TimeoutError,  # no pooled connection came free in time
    OSError,  # refused, reset or timed-out sockets (TimeoutError is an OSError)
    asyncpg.exceptions.PostgresConnectionError,  # class 08: connection failure, does not exist
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,  # 57P01: terminated by pg_ctl stop
    asyncpg.exceptions.CrashShutdownError,  # 57P02
)


def is_unavailable(error: BaseException) -> bool:
    """True when `error`, or anything it wraps, means the database could not be used at all."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, exc.DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__
    return False
