"""Direct answers (schema/direct.py) equal the full executor's, audit notes included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from resolvers.context import Context
from schema.direct import DirectAnswers
from tests.support.graphql import LIMITS, SCHEMA, principal
from tests.support.statements import recorded_statements

PROVINCE = principal(OrgKind.PROVINCE, "62")
CITY = principal(OrgKind.REGENCY, "62.71")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
DIRECT = DirectAnswers(SCHEMA._schema)

PAGE = """query Page { msmes(first: 50, filter: {region: "62"}) {
  nodes { nib name regency { name province { name } } cooperative { name } } } }"""
EVERYTHING = """
query Everything($first: Int, $filter: MsmeFilter) {
  __typename
  list: msmes(first: $first, filter: $filter) {
    __typename totalCount
    pageInfo { hasNextPage endCursor __typename }
    edges { cursor node { ...Business } }
  }
  cooperatives(first: 7, filter: {type: PRODUSEN}) {
    nodes {
      id legalEntityNo name type status businessVolume assets lastRatDate
      regency { code level name parent { code name } province { code } }
      district { code }
    }
  }
}
fragment Business on Msme {
  id nib name kbliCode kbliSection scale establishedOn capital annualTurnover employees
  isActive version
  ... on Msme { where: district { code name province { name } } }
  cooperative { name type regency { name } }
}
"""


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _both(
    engine: AsyncEngine, who: Principal, query: str, variables: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, Any, Context, Context]:
    direct_context = Context(principal=who, engine=engine, limits=LIMITS)
    executor_context = Context(principal=who, engine=engine, limits=LIMITS)
    payload = {"query": query, "variables": variables}
    direct = await DIRECT.answer(direct_context, payload)
    executed = await SCHEMA.execute(
        query, variable_values=variables, context_value=executor_context
    )
    return direct, executed, direct_context, executor_context


@pytest.mark.parametrize(
    ("who", "query", "variables"),
    [
        (PROVINCE, PAGE, None),
        (CITY, PAGE.replace('"62"', '"62.71"'), None),
        (PROVINCE, EVERYTHING, {"first": 30, "filter": {"scale": "SMALL", "kbliSection": "C"}}),
        (CITY, EVERYTHING, {"first": 100}),
        (PROVINCE, EVERYTHING, {"first": 5, "filter": {"region": "62.01", "active": True}}),
    ],
    ids=["bench page", "city page", "province, everything", "city", "regency filter"],
)
async def test_direct_answers_equal_the_executors(
    engine: AsyncEngine, who: Principal, query: str, variables: dict[str, Any] | None
) -> None:
    direct, executed, direct_context, executor_context = await _both(engine, who, query, variables)
    assert executed.errors is None
    assert direct == {"data": executed.data}
    assert direct_context.accesses.fields == executor_context.accesses.fields
    assert direct_context.accesses.records == executor_context.accesses.records


async def test_the_next_page_follows_the_cursor_alike(engine: AsyncEngine) -> None:
    first, *_ = await _both(engine, PROVINCE, EVERYTHING, {"first": 3})
    assert first is not None
    cursor = first["data"]["list"]["pageInfo"]["endCursor"]
    query = EVERYTHING.replace("$first: Int,", "$first: Int, $after: String,").replace(
        "msmes(first: $first,", "msmes(first: $first, after: $after,"
    )
    direct, executed, *_ = await _both(engine, PROVINCE, query, {"first": 3, "after": cursor})
    assert direct == {"data": executed.data}


async def test_a_page_costs_the_same_few_statements_at_any_size(engine: AsyncEngine) -> None:
    counts = []
    for size in (5, 50):
        with recorded_statements(engine) as statements:
            context = Context(principal=PROVINCE, engine=engine, limits=LIMITS)
            answer = await DIRECT.answer(context, {"query": PAGE.replace("50", str(size))})
        assert answer is not None
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 6  # region check, page, cooperatives, regions, audit


@pytest.mark.parametrize(
    ("who", "query"),
    [
        (MINISTRY, PAGE),  # FORBIDDEN comes from the executor
        (
            principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ})),
            "{ msmes { nodes { owner { nik } } } }",
        ),
        (PROVINCE, "{ msmes { nodes { memberships: participations { role } } } }"),
        (PROVINCE, "{ msmes(first: 1000) { nodes { name } } }"),  # BAD_USER_INPUT
        (PROVINCE, '{ msmes(filter: {region: "99"}) { nodes { name } } }'),
        (PROVINCE, "{ msmes { nodes { name @include(if: true) } } }"),
        (PROVINCE, "{ msmes { nodes { nope } } }"),
        (PROVINCE, '{ msmes { totalCount } msme(nib: "9990000000001") { name } }'),
        (PROVINCE, "mutation { __typename }"),
    ],
    ids=[
        "no scope",
        "owner",
        "participations",
        "page size",
        "region",
        "directive",
        "invalid",
        "other root field",
        "mutation",
    ],
)
async def test_anything_else_goes_to_the_executor(
    engine: AsyncEngine, who: Principal, query: str
) -> None:
    context = Context(principal=who, engine=engine, limits=LIMITS)
    assert await DIRECT.answer(context, {"query": query}) is None
    assert not context.accesses.worth_recording
