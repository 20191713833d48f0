"""The benchmark's floor runs the statements Sinergi runs, or its ratios measure nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from auth.scopes import OrgKind
from bench import floor
from bench.run import ELIGIBILITY, LOOKUP, PAGE
from db.engine import create_engine
from resolvers.calendar import today
from schema.engine import Engine
from tests.support.databases import as_service
from tests.support.graphql import SCHEMA, principal, request_context, run

ELIGIBLE_NIB = "9990000000001"  # an MSME of the demo data in Kalimantan Tengah
DECIDED = """SELECT msme_id, subject_key, province_code, regency_code, loan_amount, tenor_months,
                    product, ruleset_version, check_date, facts, verdict, results,
                    coverage_amount, estimated_fee
               FROM eligibility_decisions WHERE client_id = :client
              ORDER BY decided_at DESC LIMIT 1"""


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _request(state: dict[str, Any], query: str = "", body: bytes = b"") -> Request:
    """A request as Starlette hands it to a floor endpoint, with the state its lifespan made."""
    scope = {
        "type": "http",
        "method": "POST" if body else "GET",
        "headers": [],
        "query_string": query.encode(),
        "state": state,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def test_the_floor_answers_typename_with_no_statement_as_sinergi_does(
    engine: AsyncEngine,
) -> None:
    ran: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        ran.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        answer = await run(engine, principal(OrgKind.PROVINCE, "62"), "{ __typename }")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert answer.errors is None
    assert ran == []
    response = await floor.typename(_request({}))
    assert orjson.loads(response.body) == {"data": answer.data}


async def test_the_floor_looks_up_an_msme_as_sinergi_does(
    engine: AsyncEngine, demo_url: str
) -> None:
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        ran.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        variables = {"nib": ELIGIBLE_NIB}
        answer = await run(engine, principal(OrgKind.PROVINCE, "62"), LOOKUP, variables)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert answer.errors is None
    assert answer.data["msme"]["regency"]["name"]
    # Beside its data, Sinergi writes the audit entry (which the floor leaves out).
    data = [(sql, parameters) for sql, parameters in ran if "INTO audit_log" not in sql]
    (lookup,) = data
    sql, parameters = lookup
    assert sql.split() == floor.LOOKUP.split()
    assert tuple(parameters) == floor.lookup_arguments(ELIGIBLE_NIB, "62")

    pool = await asyncpg.create_pool(demo_url, min_size=1, max_size=1)
    try:
        response = await floor.msme(_request({"pool": pool}, f"nib={ELIGIBLE_NIB}"))
    finally:
        await pool.close()
    assert orjson.loads(response.body) == {"data": answer.data}


async def test_the_floor_runs_the_statement_and_arguments_sinergi_runs(
    engine: AsyncEngine,
) -> None:
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        ran.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        context = request_context(engine, principal(OrgKind.PROVINCE, "62"))
        answer = await Engine(SCHEMA).answer(context, {"query": PAGE})
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


async def test_the_floor_checks_eligibility_as_sinergi_does(
    engine: AsyncEngine, demo_url: str
) -> None:
    """The same two statements with the same arguments, the same answer, the same decision
    stored (but for who asked)."""
    ran: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        ran.append((statement, parameters))

    jamkrida = principal(OrgKind.BUMD, "62")
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        context = request_context(engine, jamkrida)
        document = {"query": ELIGIBILITY, "variables": {"nib": ELIGIBLE_NIB}}
        answer = await Engine(SCHEMA).answer(context, document)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert answer is not None
    (facts,) = [
        (sql, parameters)
        for sql, parameters in ran
        if sql.startswith("SELECT") and "AS ruleset_version" in sql
    ]
    (store,) = [sql for sql, _ in ran if "INSERT INTO eligibility_decisions" in sql]
    assert facts[0].split() == floor.FACTS.split()
    assert tuple(facts[1]) == floor.facts_arguments(ELIGIBLE_NIB, today(), "62", jamkrida.client_id)
    assert store.split() == floor.STORE.split()

    pool = await asyncpg.create_pool(demo_url, min_size=1, max_size=1)
    try:
        request = _request({"pool": pool}, body=orjson.dumps(document))
        response = await floor.eligibility(request)
    finally:
        await pool.close()
    assert orjson.loads(response.body) == orjson.loads(orjson.dumps(answer))
    async with engine.connect() as connection:
        decided = [
            (await connection.execute(text(DECIDED), {"client": client})).one()
            for client in (jamkrida.client_id, floor.FLOOR_CLIENT)
        ]
    assert decided[0].verdict == "ELIGIBLE"
    assert decided[0] == decided[1]
