"""The benchmark's floor runs the page statement Sinergi runs, or its ratio measures nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from bench import floor
from bench.run import PAGE
from db.engine import create_engine
from resolvers.context import Context
from schema.direct import DirectAnswers
from tests.support.graphql import LIMITS, SCHEMA, principal


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def test_the_floor_runs_the_statement_and_arguments_sinergi_runs(
    engine: AsyncEngine,
) -> None:
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        ran.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        context = Context(principal=principal(OrgKind.PROVINCE, "62"), engine=engine, limits=LIMITS)
        answer = await DirectAnswers(SCHEMA._schema).answer(context, {"query": PAGE})
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert answer is not None
    (page,) = [(sql, parameters) for sql, parameters in ran if "json_agg" in sql]
    sql, parameters = page
    assert sql.split() == floor.PAGE.split()
    assert tuple(parameters) == floor.page_arguments("62")

    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        nodes = await driver.fetchval(floor.PAGE, *floor.page_arguments("62"))
    expected = orjson.loads(orjson.dumps(answer))["data"]["msmes"]["nodes"]
    assert expected
    assert orjson.loads(nodes) == expected
