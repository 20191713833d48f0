"""Engines, created by whoever owns their lifetime (the app's lifespan, a CLI command)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Point any PostgreSQL URL at the asyncpg driver, the one the app runs on. libpq's
    `sslmode` (what hosted PostgreSQL services hand out) becomes the `ssl` keyword SQLAlchemy
    passes to asyncpg, which takes the same modes and has no `sslmode` keyword."""
    parsed = make_url(url)
    query = dict(parsed.query)
    if "sslmode" in query and "ssl" not in query:
        query["ssl"] = query.pop("sslmode")
    return parsed.set(drivername="postgresql+asyncpg", query=query).render_as_string(
        hide_password=False
    )


def json_text(value: Any) -> str:
    """How JSON goes into a column: SQLAlchemy's serializer, and statements on asyncpg itself."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


PLANNER_SETTINGS = {"random_page_cost": "1.1"}
"""How PostgreSQL prices reading a random page, on every connection Sinergi opens: as for data
on SSDs or in memory (1.1, the value PostgreSQL's documentation suggests for them), not as for a
spinning disk (its default, 4). Priced at 4, a province's page of MSMEs walked the primary key
and filtered on the province, reading some 1,700 rows for 51 on the bench population, rather
than read its (province_code, id) index: 950 µs a page, against 600 µs at 1.1."""


SESSION_SETTINGS = {
    "synchronous_commit": "on",
    "default_transaction_read_only": "off",
    "default_transaction_isolation": "read committed",
    "search_path": "public",
}
"""Pinned on every connection Sinergi opens, over any default set for its role or database: a
role may set its own (`ALTER ROLE … SET`), so whoever holds the service's credentials could
otherwise have every later session acknowledge commits, audit entries included, before they are
on disk (`synchronous_commit = off`: a crash then loses them), refuse every write, run at an
isolation level the code was not written for, or resolve names elsewhere than the migrations'
schema. Settings sent when connecting take precedence over all of those defaults; `sinergi
migrate` also resets the service role's (db/roles.py, `reset_own_defaults`)."""


def create_engine(
    url: str,
    *,
    statement_timeout_ms: int,
    lock_timeout_ms: int = 0,
    pool_size: int = 10,
    connect_timeout_seconds: float = 3.0,
    pool_timeout_seconds: float = 5.0,
) -> AsyncEngine:
    """Every connection gets a statement timeout, so one runaway query cannot hold a worker;
    and, when `lock_timeout_ms` is not 0 (none), a shorter wait for locks, so that a statement
    held up by another's lock fails as such (db.errors' `is_lock_timeout`), not as one slow on
    its own work.

    When the database goes away nothing waits long: connecting gives up after
    `connect_timeout_seconds`, waiting for a pooled connection after `pool_timeout_seconds`, a
    query whose server vanished after its statement timeout plus a margin (`command_timeout`).
    A connection the outage killed fails once, and SQLAlchemy then discards the whole pool, so
    service resumes by itself. There is no `pool_pre_ping`: with asyncpg it costs three round
    trips (BEGIN, an empty query, ROLLBACK) on every checkout, more than a page's own queries.

    No overflow beyond `pool_size`: SQLAlchemy closes an overflow connection as soon as it is
    returned, so a steady load just above the pool opened and closed a PostgreSQL backend (a
    fork, authentication, every statement prepared afresh) for one request in six; waiting a
    moment for a pooled connection is far cheaper. No code holds one connection while taking
    another (tests/test_pool_discipline.py runs each kind of request on a one-connection pool),
    so requests wait for connections but never for each other.

    JSON columns (audit entries, decision facts and results) go through orjson: the standard
    library's codec was a twentieth of an eligibility check's CPU.

    A failed statement's error names its SQL but not its parameters (`hide_parameters`, which
    db.driver honours too): they are personal data (an owner's NIK, the audit write's entry and
    data subjects), and an error's text goes to logs, or, unmasked, to a client.
    """
    return create_async_engine(
        async_url(url),
        hide_parameters=True,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout_seconds,
        connect_args={
            "timeout": connect_timeout_seconds,
            # 0 means "no statement timeout" (a full audit walk): then no command timeout either.
            "command_timeout": statement_timeout_ms / 1000 + 5 if statement_timeout_ms else None,
            "server_settings": {
                "statement_timeout": str(statement_timeout_ms),
                "lock_timeout": str(lock_timeout_ms),
                "application_name": "sinergi",
                **SESSION_SETTINGS,
                **PLANNER_SETTINGS,
            },
        },
    )


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, each statement its own transaction.

    Reads, and writes that are one statement, need no BEGIN and ROLLBACK or COMMIT around them:
    on a page of records those are most of the round trips to the server. Work of several
    statements that must stand or fall together keeps using `engine.begin()`.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def dispose_all(engines: Sequence[AsyncEngine], *, seconds: float) -> bool:
    """Close the engines' pooled connections, each told goodbye while the database answers,
    within `seconds` in all; past them the rest are left unclosed for the process's end to drop
    (`dispose(close=False)`). A database gone silent (its packets dropped) held each goodbye for
    its connection's command timeout, and for ever on an engine with none (the figure
    release's). Whether all were closed in time."""
    try:
        async with asyncio.timeout(seconds):
            for engine in engines:
                await engine.dispose()
    except TimeoutError:
        for engine in engines:
            await engine.dispose(close=False)
        return False
    return True


@asynccontextmanager
async def one_connection(
    url: str, *, statement_timeout_ms: int, transaction: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A connection of an engine made for it alone, in a transaction committed at the end when
    `transaction`; the engine is disposed of afterwards. For commands and start-up steps that
    need the database once, not a pool for the life of a process."""
    engine = create_engine(url, statement_timeout_ms=statement_timeout_ms, pool_size=1)
    try:
        async with engine.begin() if transaction else engine.connect() as connection:
            yield connection
    finally:
        await engine.dispose()
