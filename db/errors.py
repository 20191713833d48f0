"""Telling "the database is not there" apart from every other database error.

An outage (server stopped, restarting, unreachable, at its connection limit, connection dropped,
pool exhausted) is not the caller's fault and not a bug: it is answered SERVICE_UNAVAILABLE so
clients retry, whereas a bad statement stays an INTERNAL error. One predicate, used by every
layer that answers requests. A request cannot exhaust the pool by itself: it holds at most part
of it at once (db/reads.py's `Reads`), so a pool timeout is other requests' load, an outage to
the caller.

A read past the statement timeout is neither: the request asked for more than a statement may
take (ReadTimedOut). A statement past the lock timeout (`is_lock_timeout`), which the server's
connections set shorter than the statement timeout, was held up by another's lock rather than
slow on its own work: the GraphQL layer answers it as an outage, to be sent again.
"""

from __future__ import annotations

import re

import asyncpg
from sqlalchemy import exc


class ReplicaConflict(Exception):
    """The replica cancelled a read to replay the primary's changes (a recovery conflict): not
    the request's fault, and the primary would have answered it. An outage to the caller, who
    retries; db/reads.py leaves the replica unread for a while first."""


_RECOVERY_CONFLICTS = frozenset({"40001", "40P01", "57P04"})
"""The SQLSTATEs a hot standby cancels a statement with to replay WAL: a snapshot, lock or
buffer pin in replay's way (40001, 40P01 for a buffer pin deadlock), its database dropped
(57P04)."""


def is_recovery_conflict(error: BaseException) -> bool:
    """True when `error`, or anything it wraps, has a SQLSTATE a hot standby cancels a read
    with to replay WAL. On the primary 40001 and 40P01 are a transaction's own conflicts:
    only a replica's read-only, autocommitted statements tell them apart."""
    cause = _asyncpg_error(error)
    return cause is not None and cause.sqlstate in _RECOVERY_CONFLICTS


_OUTAGES = (
    ReplicaConflict,
    exc.TimeoutError,  # no pooled connection came free in time
    OSError,  # refused, reset or timed-out sockets (TimeoutError is an OSError)
    asyncpg.exceptions.PostgresConnectionError,  # class 08: connection failure, does not exist
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,  # 53300: at max_connections or a CONNECTION LIMIT
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


class HeldUp(Exception):
    """A read waited past the lock timeout for a lock another transaction holds (a migration's
    ACCESS EXCLUSIVE lock): not the request's doing, unlike ReadTimedOut, and asking again once
    the lock is let go succeeds (db/reads.py raises it, from the database's error, which
    `is_lock_timeout` finds through it)."""


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


def transient_reason(error: BaseException) -> str | None:
    """Why a statement failed, when `error` is what sending it again shortly mends: the database
    away (`is_unavailable`), or a statement held up past the lock timeout (`is_lock_timeout`, a
    migration's table lock, another write's row); None for anything else, a bug or the request's
    own doing. The one test for every lookup outside the GraphQL executor (a token, a trusted
    document, a socket's recheck) that answers SERVICE_UNAVAILABLE with Retry-After."""
    if is_unavailable(error):
        return "the database is unavailable"
    if is_lock_timeout(error):
        return "held up waiting for another transaction's lock (held past the lock timeout)"
    return None


def is_transient(error: BaseException) -> bool:
    """True when `error` is an outage or a lock wait past the lock timeout (`transient_reason`)."""
    return transient_reason(error) is not None


def is_serialization_failure(error: BaseException) -> bool:
    """True when `error`, or anything it wraps, is PostgreSQL refusing a repeatable-read
    transaction's change to a row another transaction changed since its snapshot."""
    return isinstance(_asyncpg_error(error), asyncpg.exceptions.SerializationError)


def privilege_refused(error: BaseException) -> str | None:
    """PostgreSQL's message when `error`, or anything it wraps, is the server refusing the role
    a privilege (42501: `permission denied for table …`); None for anything else."""
    cause = _asyncpg_error(error)
    if not isinstance(cause, asyncpg.exceptions.InsufficientPrivilegeError):
        return None
    return str(cause.args[0]) if cause.args else "permission denied"


_DATABASE_ERRORS = (asyncpg.PostgresError, exc.DBAPIError, exc.EmulatedDBAPIException)

_QUOTED_VALUE = re.compile(r': ".*"$', re.DOTALL)
"""The offending value some messages end with (22P02 `invalid input syntax for type date:
"…"`, an enum's value): input, which may be personal."""

_ARGUMENT_VALUE = re.compile(r"(query argument \$\d+): .*$", re.DOTALL)
"""The value asyncpg quotes, unquoted by `"`, when it cannot encode a statement's parameter
(22000 `invalid input for query argument $1: '…' (…)`): a bound value, which may be personal."""


def _without_value(message: str) -> str:
    """PostgreSQL's or asyncpg's `message` with the value it ends with left out."""
    return _ARGUMENT_VALUE.sub(r"\1: …", _QUOTED_VALUE.sub(': "…"', message))


def loggable(error: BaseException) -> str | None:
    """`error` as a log line may tell it, when it is PostgreSQL's error (the driver's, or
    SQLAlchemy's around it) or was raised from or while handling one; None for any other
    exception.

    The server's DETAIL carries the row's values (`Failing row contains (…, NIK, name, phone,
    address)`, `Key (nik)=(…)`), its CONTEXT and HINT may too, and the wrappers' text repeats
    them: none of it reaches the log (UU 27/2022). What locates the fault stays: the SQLSTATE,
    the message with any value it ends with left out, and the names of the constraint, table,
    column and type.

    An exception of another kind whose cause or context is a database error (`raise
    ImportFailed(f"row 12: {error}") from error`) may quote it in its own message: each text of
    the database error in it is told as above, and where any of the server's values would
    still show, the message is replaced whole by the database error as told."""
    if isinstance(error, _DATABASE_ERRORS):
        cause = _asyncpg_error(error)
        return None if cause is None else _tell(cause)
    database = _chained_database_error(error)
    if database is None:
        return None
    cause = _asyncpg_error(database)
    if cause is None:
        return None
    told = _tell(cause)
    message = str(error)
    for quoted in sorted(_texts(database), key=len, reverse=True):
        message = message.replace(quoted, told)
    return told if any(value in message for value in _values(cause)) else message


def _tell(cause: asyncpg.PostgresError) -> str:
    message = _without_value(str(cause.args[0]) if cause.args else "")
    names = {
        "constraint": cause.constraint_name,
        "table": cause.table_name,
        "column": cause.column_name,
        "type": cause.data_type_name,
    }
    named = ", ".join(f"{kind} {name}" for kind, name in names.items() if name)
    return f"[SQLSTATE {cause.sqlstate}] {message}" + (f" ({named})" if named else "")


def _chained_database_error(error: BaseException) -> BaseException | None:
    """The first database error `error` was raised from or while handling, however far back
    (its context counts even when `from None` hides it: the message may quote it all the same)."""
    seen: set[int] = set()
    current = error.__cause__ or error.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _DATABASE_ERRORS):
            return current
        current = current.__cause__ or current.__context__
    return None


def _texts(database: BaseException) -> list[str]:
    """Every text a database error may be quoted by: its own, and each it wraps."""
    texts: list[str] = []
    current: BaseException | None = database
    while current is not None and str(current) not in texts:
        texts.append(str(current))
        current = current.orig if isinstance(current, exc.DBAPIError) else current.__cause__
    return [text for text in texts if text]


def _values(cause: asyncpg.PostgresError) -> list[str]:
    """The parts of PostgreSQL's error that may carry the row's values: DETAIL, HINT, CONTEXT,
    the statement it ran inside, and the value a message ends with."""
    parts = [cause.detail, cause.hint, cause.context, cause.internal_query]
    raw = str(cause.args[0]) if cause.args else ""
    if _without_value(raw) != raw:
        parts.append(raw)
    return [part for part in parts if part]


def unique_key_taken(error: BaseException) -> str | None:
    """The unique constraint `error`, or anything it wraps, says a row already holds; None for
    any other error."""
    cause = _asyncpg_error(error)
    if isinstance(cause, asyncpg.exceptions.UniqueViolationError):
        return cause.constraint_name  # type: ignore[no-any-return]
    return None
