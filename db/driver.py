"""The statements every request runs, straight on asyncpg.

Through SQLAlchemy's async layer a statement costs some 90 µs of CPU more than on asyncpg alone
(a greenlet switch, an execution context, a result object): for the token check that every
request makes, a quarter of a request that does nothing else. A statement run here is compiled
once, keeps SQLAlchemy's pooled connection, and is announced to SQLAlchemy's engine events like
any other, so statement counts (tests/support/statements.py) and SQL spans (sinergi/tracing.py)
see it. A failure reaches the caller as SQLAlchemy would raise it (its parameters hidden when
the engine hides them), and a connection that an outage broke is invalidated, as SQLAlchemy
invalidates its own.

A statement that needs no other on its connection takes it with `check_out`: checking out and
returning SQLAlchemy's Connection (its isolation level set and reset, its events) costs another
100 µs of CPU, twice on a page of records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import SimpleNamespace, TracebackType
from typing import Any, cast

import asyncpg
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from db.errors import is_unavailable


class Row:
    """An asyncpg record read by column name as attributes, or unpacked, as SQLAlchemy's rows
    are."""

    __slots__ = ("_record",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._record)


class DriverStatement:
    """A statement compiled once to PostgreSQL's own SQL, its parameters in `$n` order."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """SQL text, parameter names in order, and the values bound into the statement."""
        if self._compiled is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            if any(bind.expanding for bind in compiled.binds.values()):
                raise ValueError("an IN list is expanded per execution: write = ANY or OR")
            if any(bind.type.bind_processor(dialect) for bind in compiled.binds.values()):
                raise ValueError("a parameter needs SQLAlchemy's conversion (JSON, say)")
            names = tuple(compiled.positiontup or ())
            bound = {
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if not bind.required
            }
            self._compiled = compiled.string, names, bound
        return self._compiled


class Pooled:
    """A connection checked out of an engine's pool for this module's statements alone; given
    back with `async with` (closing a pooled connection may wait on the server)."""

    __slots__ = ("_pooled", "engine")

    def __init__(self, engine: Engine, pooled: PoolProxiedConnection) -> None:
        self.engine = engine
        self._pooled = pooled

    @property
    def driver(self) -> asyncpg.Connection:
        return self._pooled.driver_connection

    async def invalidate(self, error: BaseException) -> None:
        await greenlet_spawn(self._pooled.invalidate, error)

    async def __aenter__(self) -> Pooled:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await greenlet_spawn(self._pooled.close)


async def check_out(engine: AsyncEngine) -> Pooled:
    """A connection of `engine`'s pool. Failing to get one raises what SQLAlchemy's `connect`
    raises (its pool's TimeoutError, or a DBAPIError around the driver's error)."""
    try:
        pooled = await engine.raw_connection()
    except exc.SQLAlchemyError:
        raise
    except Exception as error:
        raise exc.DBAPIError(None, None, error) from error
    return Pooled(engine.sync_engine, pooled)


async def fetch(
    connection: AsyncConnection | Pooled,
    statement: DriverStatement,
    parameters: Mapping[str, Any],
) -> list[Row]:
    """The rows of `statement`, with `parameters` added to the values bound into it, on a
    connection from `check_out` or on SQLAlchemy's in autocommit: in a transaction, SQLAlchemy
    sends its BEGIN only before its own first statement, so this one would run outside."""
    records = await _run(connection, statement, parameters)
    return [Row(record) for record in records]


async def _run(
    connection: AsyncConnection | Pooled,
    statement: DriverStatement,
    parameters: Mapping[str, Any],
) -> list[asyncpg.Record]:
    """`statement` announced to SQLAlchemy's events as its own execution would be, its failures
    raised and broken connections invalidated as SQLAlchemy does."""
    events: Connection | Engine
    if isinstance(connection, Pooled):
        events, driver = connection.engine, connection.driver
    else:
        sync = connection.sync_connection
        assert sync is not None
        options = sync.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT":
            raise RuntimeError("db.driver runs statements on autocommit connections only")
        if options.get("schema_translate_map"):
            # It renders tables as named: a figure release's statement would read live ones.
            raise RuntimeError("db.driver does not read a figure release (schema_translate_map)")
        events, driver = sync, (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    sql, names, bound = statement.compiled(events.dialect)
    given = {**bound, **parameters}
    arguments = [given[name] for name in names]
    executed = SimpleNamespace()  # the execution context listeners annotate (a tracing span)
    for listener in events.dispatch.before_cursor_execute:
        sql, arguments = listener(events, None, sql, arguments, executed, False)
    try:
        records: list[asyncpg.Record] = await driver.fetch(sql, *arguments)
        return records
    except Exception as error:
        # PostgreSQL refused the statement: the connection is fine, unless the server is going
        # away. Anything else (a socket, a protocol left mid-operation by a dying server) leaves
        # the connection unusable.
        broken = not isinstance(error, asyncpg.PostgresError) or is_unavailable(error)
        if broken:
            await _invalidate(connection, error)
        hidden = events.engine.hide_parameters
        raise exc.DBAPIError(
            sql, arguments, error, hide_parameters=hidden, connection_invalidated=broken
        ) from error
    finally:
        for listener in events.dispatch.after_cursor_execute:
            listener(events, None, sql, arguments, executed, False)


async def _invalidate(connection: AsyncConnection | Pooled, error: BaseException) -> None:
    """What SQLAlchemy does when its own statement meets a dead connection: close this one, and
    replace every other one the pool made before it at its next checkout (the server they were
    talking to is likely gone too), so that a database back from a restart is not answered with
    one failure per pooled connection. `Pool._invalidate` is the call SQLAlchemy makes for that;
    tests/test_driver.py fails if it stops doing so."""
    if isinstance(connection, Pooled):
        pool, pooled = connection.engine.pool, connection._pooled
    else:
        sync = connection.sync_connection
        assert sync is not None
        pool, pooled = sync.engine.pool, sync.connection
    pool._invalidate(pooled, error, _checkin=False)  # only notes the time: no I/O
    await connection.invalidate(error)
