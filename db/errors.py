"""Telling "the database is not there" apart from every other database error.

An outage (server stopped, restarting, unreachable, connection dropped, pool exhausted) is not the
caller's fault and not a bug: it is answered SERVICE_UNAVAILABLE so clients retry, whereas a bad
statement stays an INTERNAL error. One predicate, used by every layer that answers requests.
A request cannot exhaust the pool by itself: it holds at most part of it at once (db/reads.py's
`Reads`), so a pool timeout is other requests' load, an outage to the caller.

A read past the statement timeout is neither: the request asked for more than a statement may
take (ReadTimedOut).
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


class ReadTimedOut(Exception):
    """A read ran past the statement timeout: what the request asked for costs more than one
    statement may take, its own doing (db/reads.py raises it, from the database's error)."""


def _asyncpg_error(error: BaseException) -> asyncpg.PostgresError | None:
    """The PostgreSQL error `error` is, or wraps (SQLAlchemy's around the driver's)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.PostgresError):
            return current
        if isinstance(current, exc.DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__
    return None


def is_statement_timeout(error: BaseException) -> bool:
    """True when `error`, or anything it wraps, is PostgreSQL cancelling a statement that ran
    past `statement_timeout`."""
    cause = _asyncpg_error(error)
    return isinstance(cause, asyncpg.exceptions.QueryCanceledError) and (
        "statement timeout" in str(cause)
    )


def is_lock_timeout(error: BaseException) -> bool:
    """True when `error`, or anything it wraps, is PostgreSQL giving up waiting for a lock
    after `lock_timeout`."""
    return isinstance(_asyncpg_error(error), asyncpg.exceptions.LockNotAvailableError)


def is_serialization_failure(error: BaseException) -> bool:
    """True when `error`, or anything it wraps, is PostgreSQL refusing a repeatable-read
    transaction's change to a row another transaction changed since its snapshot."""
    return isinstance(_asyncpg_error(error), asyncpg.exceptions.SerializationError)
