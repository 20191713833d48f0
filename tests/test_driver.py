"""Statements run straight on asyncpg (db/driver.py) behave as SQLAlchemy's own: seen by its
events, failing as it fails, a broken connection invalidated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import (
    bindparam,
    exc,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver import DriverStatement, Pooled, check_out, fetch
from db.engine import PLANNER_SETTINGS, autocommit, create_engine
from db.errors import is_unavailable
from tests.support.served import free_port
from tests.support.statements import recorded_statements

BACKEND = DriverStatement(text("SELECT pg_backend_pid() AS pid"))
SQUARE = DriverStatement(
    text("SELECT CAST(:n AS int) * CAST(:n AS int) AS square, 'fixed' AS label")
)


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = autocommit(create_engine(migrated_url, statement_timeout_ms=10_000))
    yield engine
    await engine.dispose()


async def test_rows_read_by_name_and_the_statement_is_seen_by_sqlalchemys_events(
    engine: AsyncEngine,
) -> None:
    with recorded_statements(engine) as statements:
        async with engine.connect() as connection:
            (row,) = await fetch(connection, SQUARE, {"n": 7})
    assert (row.square, row.label) == (49, "fixed")
    assert list(row) == [49, "fixed"]
    assert statements == [SQUARE.compiled(engine.dialect)[0]]


async def test_a_refused_statement_fails_as_sqlalchemy_fails_and_keeps_the_connection(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        with pytest.raises(exc.DBAPIError, match="division by zero") as refused:
            await fetch(connection, DriverStatement(text("SELECT 1 / 0")), {})
        assert not refused.value.connection_invalidated
        assert not is_unavailable(refused.value)
        (row,) = await fetch(connection, SQUARE, {"n": 2})
    assert row.square == 4


BOTH_KINDS = pytest.mark.parametrize(
    "check_out_alone", [True, False], ids=["checked out", "sqlalchemy's"]
)


PERSONAL = "6271015204889999"
"""A NIK, bound as a parameter of a statement that fails."""
FAILING = text("SELECT CAST(:nik AS text) AS nik, 1 / 0 AS boom")


@pytest.mark.parametrize("through_driver", [True, False], ids=["db.driver", "sqlalchemy's"])
async def test_a_failed_statements_error_carries_no_bound_parameter(
    engine: AsyncEngine, through_driver: bool
) -> None:
    """An error's text goes to logs and, unmasked, once went to a WebSocket client: the audit
    write's parameters (an entry, the data subjects' NIKs) with it. Every engine hides them,
    on SQLAlchemy's statements and db.driver's alike."""

    async def failing(connection: AsyncConnection) -> object:
        if through_driver:
            return await fetch(connection, DriverStatement(FAILING), {"nik": PERSONAL})
        return await connection.execute(FAILING, {"nik": PERSONAL})

    async with engine.connect() as connection:
        with pytest.raises(exc.DBAPIError, match="division by zero") as refused:
            await failing(connection)
    assert "CAST" in str(refused.value)  # the statement is still named
    assert PERSONAL not in str(refused.value)
    assert PERSONAL not in repr(refused.value)


@asynccontextmanager
async def _connection(
    engine: AsyncEngine, check_out_alone: bool
) -> AsyncIterator[AsyncConnection | Pooled]:
    """A connection of either kind db.driver runs on."""
    if check_out_alone:
        async with await check_out(engine) as pooled:
            yield pooled
    else:
        async with engine.connect() as connection:
            yield connection


async def _backend(connection: AsyncConnection | Pooled) -> int:
    (row,) = await fetch(connection, BACKEND, {})
    return int(row.pid)


async def _terminate(url: str, pids: list[int]) -> None:
    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


@BOTH_KINDS
async def test_a_connection_the_server_dropped_is_invalidated_and_counts_as_an_outage(
    engine: AsyncEngine, migrated_url: str, check_out_alone: bool
) -> None:
    async with _connection(engine, check_out_alone) as connection:
        pid = await _backend(connection)
        await _terminate(migrated_url, [pid])
        with pytest.raises(exc.DBAPIError) as dropped:
            await fetch(connection, SQUARE, {"n": 3})
        assert dropped.value.connection_invalidated
        assert is_unavailable(dropped.value)
    async with _connection(engine, check_out_alone) as connection:  # a working one
        assert await _backend(connection) != pid
        (row,) = await fetch(connection, SQUARE, {"n": 3})
    assert row.square == 9


async def test_a_checked_out_connection_runs_statements_and_goes_back_to_the_pool(
    engine: AsyncEngine,
) -> None:
    with recorded_statements(engine) as statements:
        async with await check_out(engine) as connection:
            (row,) = await fetch(connection, SQUARE, {"n": 5})
            assert engine.pool.checkedout() == 1
    assert (row.square, row.label) == (25, "fixed")
    assert statements == [SQUARE.compiled(engine.dialect)[0]]
    assert engine.pool.checkedout() == 0


@BOTH_KINDS
async def test_a_dead_connection_retires_the_others_of_its_pool(
    migrated_url: str, check_out_alone: bool
) -> None:
    """As after a database restart: every pooled connection is dead, and only the first
    request to meet one fails."""
    engine = autocommit(create_engine(migrated_url, statement_timeout_ms=10_000, pool_size=2))
    try:
        async with _connection(engine, True) as first, _connection(engine, True) as second:
            pids = [await _backend(first), await _backend(second)]
        await _terminate(migrated_url, pids)
        with pytest.raises(exc.DBAPIError):
            async with _connection(engine, check_out_alone) as connection:
                await fetch(connection, SQUARE, {"n": 2})
        # The pool's other connection is as dead; it is replaced when next checked out.
        async with _connection(engine, check_out_alone) as connection:
            assert await _backend(connection) not in pids
    finally:
        await engine.dispose()


async def test_no_server_to_check_out_from_is_an_outage() -> None:
    port = free_port()  # a port nothing listens on: connections are refused
    engine = create_engine(
        f"postgresql://postgres@127.0.0.1:{port}/none", statement_timeout_ms=1_000
    )
    try:
        with pytest.raises(exc.DBAPIError) as refused:
            await check_out(engine)
        assert is_unavailable(refused.value)
    finally:
        await engine.dispose()


async def test_a_connection_in_a_transaction_is_refused(migrated_url: str) -> None:
    """SQLAlchemy sends BEGIN only before its own first statement: this one would run outside."""
    engine = create_engine(migrated_url, statement_timeout_ms=10_000)
    try:
        async with engine.begin() as connection:
            with pytest.raises(RuntimeError, match="autocommit"):
                await fetch(connection, SQUARE, {"n": 1})
    finally:
        await engine.dispose()


def test_an_in_list_is_refused_when_compiled(engine: AsyncEngine) -> None:
    """Its parameters are expanded per execution; a statement compiled once cannot carry it."""
    statement = DriverStatement(select(literal(1)).where(literal(2).in_([1, 2])))
    with pytest.raises(ValueError, match="IN list"):
        statement.compiled(engine.dialect)


def test_a_parameter_sqlalchemy_converts_is_refused_when_compiled(engine: AsyncEngine) -> None:
    """asyncpg would get the Python value where SQLAlchemy sends what its type makes of it."""
    document = bindparam("document", type_=JSONB)
    statement = DriverStatement(select(literal(1)).where(document.is_not(None)))
    with pytest.raises(ValueError, match="conversion"):
        statement.compiled(engine.dialect)


async def test_every_connection_is_planned_with_sinergis_planner_settings(
    engine: AsyncEngine,
) -> None:
    """Priced as PostgreSQL's default prices a spinning disk, a province's page walked the
    primary key rather than its (province_code, id) index (db.engine.PLANNER_SETTINGS)."""
    async with engine.connect() as connection:
        for name, value in PLANNER_SETTINGS.items():
            shown = (await connection.execute(text(f"SHOW {name}"))).scalar_one()
            assert float(shown) == float(value) != 4.0
