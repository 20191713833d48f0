"""Direct answers (schema/direct.py) equal the full executor's, audit notes included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from resolvers.context import Context
from schema.direct import DirectAnswers
from tests.support.graphql import LIMITS, SCHEMA, as_sent, principal
from tests.support.statements import recorded_statements

PROVINCE = principal(OrgKind.PROVINCE, "62")
CITY = principal(OrgKind.REGENCY, "62.71")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
DIRECT = DirectAnswers(SCHEMA._schema)

PAGE = """query Page { msmes(first: 50, filter: {region: "62"}) {
  nodes { nib name regency { name province { name } } cooperative { name } } } }"""
PAGE_ARGUMENTS = ("62", "62", 2, "ID", "62")  # what PAGE's statement binds for PROVINCE
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

# Columns and region or cooperative relations: PostgreSQL builds the nodes' JSON.
BUILT_BY_POSTGRESQL = """
query Built($first: Int, $after: String, $filter: MsmeFilter) {
  list: msmes(first: $first, after: $after, filter: $filter) {
    __typename totalCount pageInfo { hasNextPage endCursor }
    nodes {
      __typename id nib label: name kbliCode scale establishedOn capital annualTurnover
      turnoverYear employees isActive version
      regency { code level name parent { code name } province { name } }
      district { code name }
      cooperative { id name type status regency { name province { code } } }
    }
  }
  cooperatives(first: 5) {
    nodes {
      id name legalEntityNo type status businessVolume assets lastRatDate lastRatBookYear
      regency { name }
    }
  }
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
    answer = await DIRECT.answer(direct_context, payload)
    # As the client reads it: a page's nodes may be JSON that PostgreSQL wrote.
    direct = None if answer is None else orjson.loads(orjson.dumps(answer))
    executed = as_sent(
        await SCHEMA.execute(query, variable_values=variables, context_value=executor_context)
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
        (PROVINCE, BUILT_BY_POSTGRESQL, {"first": 7, "filter": {"scale": "SMALL"}}),
        (CITY, BUILT_BY_POSTGRESQL, {"first": 100}),
        (PROVINCE, BUILT_BY_POSTGRESQL, {"first": 5, "filter": {"kbliSection": "U"}}),
    ],
    ids=[
        "bench page",
        "city page",
        "province, everything",
        "city",
        "regency filter",
        "built by postgresql",
        "built, city",
        "built, empty",
    ],
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


async def test_pages_built_by_postgresql_follow_the_cursor_alike(engine: AsyncEngine) -> None:
    variables: dict[str, Any] = {"first": 4}
    for _ in range(3):
        direct, executed, *_ = await _both(engine, PROVINCE, BUILT_BY_POSTGRESQL, variables)
        assert direct == {"data": executed.data}
        variables["after"] = executed.data["list"]["pageInfo"]["endCursor"]
    assert executed.data["list"]["nodes"]


async def test_a_page_of_plain_fields_and_relations_is_one_statement(
    engine: AsyncEngine,
) -> None:
    with recorded_statements(engine) as statements:
        context = Context(principal=PROVINCE, engine=engine, limits=LIMITS)
        assert await DIRECT.answer(context, {"query": PAGE}) is not None
    reads = [statement for statement in statements if "msmes" in statement]
    assert len(reads) == 1  # the page, its regions and its cooperatives
    assert "json_agg" in reads[0]
    assert not any(statement.startswith("SELECT cooperatives") for statement in statements)


async def test_a_page_looks_its_regions_up_rather_than_scan_them(engine: AsyncEngine) -> None:
    """Fifty index probes, not a pass over all 7,838 regions, however dear the statistics make
    a probe look: on the bench database, PostgreSQL's default cost model (a disk read per
    probe) had a plain join scan and hash every region for each page."""
    with recorded_statements(engine) as statements:
        context = Context(principal=PROVINCE, engine=engine, limits=LIMITS)
        assert await DIRECT.answer(context, {"query": PAGE}) is not None
    (page,) = [statement for statement in statements if "json_agg" in statement]
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.transaction():
            # The demo data's statistics make probes look cheap; these make them look dear.
            await driver.execute("ANALYZE msmes")
            await driver.execute("SET LOCAL random_page_cost = 40")
            plan = await driver.fetchval(f"EXPLAIN (FORMAT JSON) {page}", *PAGE_ARGUMENTS)

    def scanned(node: dict[str, Any]) -> list[tuple[str, str]]:
        here = [(node["Node Type"], node["Relation Name"])] if "Relation Name" in node else []
        return here + [scan for child in node.get("Plans", []) for scan in scanned(child)]

    scans = scanned(plan[0]["Plan"])  # SQLAlchemy's connection decodes JSON itself
    regions = [kind for kind, relation in scans if relation == "regions"]
    assert len(regions) == 2
    assert set(regions) <= {"Index Scan", "Index Only Scan"}


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


NATIONAL_FIGURES = "{ msmeFigures(groupBy: [PROVINCE, SCALE]) { key { value } count turnoverSum } }"
FIGURES = """
query Figures($groupBy: [MsmeDimension!]!, $filter: MsmeFilter) {
  msmeFigures(groupBy: $groupBy, filter: $filter) { ...Cell }
}
fragment Cell on MsmeFigure {
  __typename suppressed count turnoverSum turnoverAverage capitalSum employeesSum
  key { __typename dimension value region { code level name province { name } parent { code } } }
}
"""
COOPERATIVE_FIGURES = """
query ($filter: CooperativeFilter) {
  cooperativeFigures(groupBy: [REGENCY, TYPE, STATUS], filter: $filter) {
    key { dimension value where: region { name } }
    suppressed count businessVolumeSum businessVolumeAverage assetsSum membersSum
  }
}
"""
GRADUATIONS = """{ graduations(year: 2025, groupBy: [REGENCY, TO_SCALE], region: "62") {
  key { dimension value region { name } } suppressed count } }"""
MIXED = """{
  figures: msmeFigures(groupBy: [REGENCY], filter: {region: "62"}) { key { region { name } } count }
  msmes(first: 20, filter: {region: "62"}) { nodes { name regency { name } } }
  cooperativeFigures(groupBy: []) { count }
}"""
BAD = "BAD_USER_INPUT"
NO_AGGREGATES = Principal(
    client_id="test-no-aggregates",
    org_kind=OrgKind.PROVINCE,
    jurisdiction="62",
    scopes=frozenset({Scope.RECORDS_READ}),
)


@pytest.mark.parametrize(
    ("who", "query", "variables"),
    [
        (MINISTRY, NATIONAL_FIGURES, None),
        (MINISTRY, FIGURES, {"groupBy": ["PROVINCE", "SCALE"]}),
        (PROVINCE, FIGURES, {"groupBy": ["REGENCY", "SCALE"], "filter": {"region": "62"}}),
        (
            MINISTRY,
            FIGURES,
            {"groupBy": ["KBLI_SECTION"], "filter": {"region": "62.71", "active": True}},
        ),
        (MINISTRY, FIGURES, {"groupBy": ["PROVINCE", "SCALE", "KBLI_SECTION", "ACTIVE"]}),
        (CITY, FIGURES, {"groupBy": ["ESTABLISHED_YEAR"], "filter": {"programme": "1"}}),
        (PROVINCE, COOPERATIVE_FIGURES, {"filter": {"type": "PRODUSEN", "active": True}}),
        (MINISTRY, COOPERATIVE_FIGURES, None),
        (MINISTRY, GRADUATIONS, None),
        (PROVINCE, MIXED, None),
    ],
    ids=[
        "bench figures",
        "ministry, national",
        "province over its own regencies",
        "region filter",
        "four dimensions",
        "records, not a rollup",
        "cooperatives of a province",
        "cooperatives, national",
        "graduations",
        "figures beside a page",
    ],
)
async def test_direct_figures_equal_the_executors(
    engine: AsyncEngine, who: Principal, query: str, variables: dict[str, Any] | None
) -> None:
    direct, executed, direct_context, executor_context = await _both(engine, who, query, variables)
    assert executed.errors is None
    assert direct == {"data": executed.data}
    assert direct_context.accesses.fields == executor_context.accesses.fields
    assert direct_context.accesses.records == executor_context.accesses.records
    assert direct_context.accesses.worth_recording is (query == MIXED)


async def test_direct_figures_suppress_what_the_executor_suppresses(engine: AsyncEngine) -> None:
    """The equality above means something only if some cells are hidden, and some small ones
    stay visible to a province over its own records."""
    grouping = {"groupBy": ["REGENCY", "SCALE"], "filter": {"region": "62"}}
    cells = {}
    for who in (MINISTRY, PROVINCE):
        context = Context(principal=who, engine=engine, limits=LIMITS)
        answer = await DIRECT.answer(context, {"query": FIGURES, "variables": grouping})
        assert answer is not None
        cells[who.org_kind] = answer["data"]["msmeFigures"]
    assert any(cell["suppressed"] for cell in cells[OrgKind.MINISTRY])
    assert not any(cell["suppressed"] for cell in cells[OrgKind.PROVINCE])
    small = [cell for cell in cells[OrgKind.PROVINCE] if 0 < cell["count"] < LIMITS.suppression_k]
    assert small


async def test_figures_fetch_their_key_regions_in_one_statement(engine: AsyncEngine) -> None:
    query = "{ msmeFigures(groupBy: [REGENCY]) { key { region { name province { name } } } } }"
    for document, expected in ((NATIONAL_FIGURES, 1), (query, 2)):  # rollup (+ regions)
        with recorded_statements(engine) as statements:
            context = Context(principal=MINISTRY, engine=engine, limits=LIMITS)
            assert await DIRECT.answer(context, {"query": document}) is not None
        assert len(statements) == expected


@pytest.mark.parametrize(
    ("who", "query", "code"),
    [
        (NO_AGGREGATES, NATIONAL_FIGURES, "FORBIDDEN"),
        (MINISTRY, NATIONAL_FIGURES.replace("SCALE", "SCALE, KBLI_SECTION, ACTIVE, REGENCY"), BAD),
        (MINISTRY, NATIONAL_FIGURES.replace("PROVINCE", "SCALE"), BAD),
        (MINISTRY, '{ msmeFigures(groupBy: [], filter: {region: "99"}) { count } }', BAD),
        (MINISTRY, '{ graduations(year: 2025, groupBy: [], region: "6") { count } }', BAD),
        (
            MINISTRY,
            "{ msmeFigures(groupBy: [PROVINCE]) { key { region { children { code } } } } }",
            None,
        ),
        (
            MINISTRY,
            '{ msmeFigures(groupBy: []) { count } msme(nib: "9990000000001") { name } }',
            "FORBIDDEN",
        ),
        (MINISTRY, "{ cooperativeFigures(groupBy: []) { count @skip(if: false) } }", None),
    ],
    ids=[
        "no scope",
        "too many dimensions",
        "dimension twice",
        "bad region",
        "bad graduations region",
        "region children",
        "other root field",
        "directive",
    ],
)
async def test_other_figures_go_to_the_executor(
    engine: AsyncEngine, who: Principal, query: str, code: str | None
) -> None:
    context = Context(principal=who, engine=engine, limits=LIMITS)
    assert await DIRECT.answer(context, {"query": query}) is None
    assert not context.accesses.worth_recording
    executed = await SCHEMA.execute(
        query, context_value=Context(principal=who, engine=engine, limits=LIMITS)
    )
    codes = [(error.extensions or {}).get("code") for error in executed.errors or ()]
    assert codes == ([code] if code else [])
