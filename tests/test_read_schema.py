"""The read schema over the demo data, as a province and as a national records reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from db.queries import regions
from resolvers.paging import encode_cursor
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.support.http import Api
from tests.support.statements import recorded_statements

KALTENG = principal(OrgKind.PROVINCE, "62")
NATIONAL_READER = principal(OrgKind.PROVINCE, "ID")


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


PRODUCER_COOPERATIVES = """
query {
  cooperatives(first: 100, filter: {region: "62", type: PRODUSEN, active: true}) {
    totalCount
    nodes { name type isActive memberCount membersMale membersFemale regency { code name } }
  }
}
"""


async def test_active_producer_cooperatives_of_kalteng_come_with_regency_and_member_count(
    engine: AsyncEngine,
) -> None:
    result = await run(engine, KALTENG, PRODUCER_COOPERATIVES)
    assert result.errors is None
    async with engine.connect() as connection:
        expected = (
            await connection.execute(
                text(
                    "SELECT count(*) FROM cooperatives WHERE province_code = '62' "
                    "AND type = 'produsen' AND status = 'active'"
                )
            )
        ).scalar_one()
    page = result.data["cooperatives"]
    assert page["totalCount"] == expected > 0
    assert len(page["nodes"]) == min(expected, 100)
    for node in page["nodes"]:
        assert node["type"] == "PRODUSEN"
        assert node["isActive"] is True
        assert node["regency"]["code"].startswith("62.")
        assert node["memberCount"] == node["membersMale"] + node["membersFemale"]


MSME_PAGE = """
query Page($first: Int!, $after: String) {
  msmes(first: $first, after: $after) {
    nodes { nib name regency { name province { name } } cooperative { name } }
  }
}
"""


async def test_a_page_costs_the_same_statements_for_five_rows_as_for_fifty(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        member = (
            await connection.execute(
                text("SELECT min(id) FROM msmes WHERE cooperative_id IS NOT NULL")
            )
        ).scalar_one()
    start = encode_cursor("msme", member - 1)  # both pages start at a cooperative member
    with recorded_statements(engine) as small:
        result = await run(engine, NATIONAL_READER, MSME_PAGE, {"first": 5, "after": start})
    assert result.errors is None
    with recorded_statements(engine) as large:
        result = await run(engine, NATIONAL_READER, MSME_PAGE, {"first": 50, "after": start})
    assert result.errors is None
    nodes = result.data["msmes"]["nodes"]
    assert len(nodes) == 50
    assert any(node["cooperative"] is not None for node in nodes)
    # the page, in which PostgreSQL joins the regions and cooperatives, and the audit entry
    assert len(small) == len(large) == 2


REGION_PAGE = """query ($region: String) { msmes(first: 5, filter: {region: $region}) {
  nodes { regency { name province { name } } } } }"""


def test_the_app_reads_regions_once_and_again_only_for_a_code_it_does_not_hold(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = "demo-province-62"
    api.graphql(REGION_PAGE, client, {"region": "62"})
    with recorded_statements() as statements:
        answer = api.graphql(REGION_PAGE, client, {"region": "62"})
    assert answer["data"]["msmes"]["nodes"][0]["regency"]["province"] == {
        "name": "Kalimantan Tengah"
    }
    assert statements, "the request ran no SQL at all; the recorder is not listening"
    # The directory's own read (the page's statement looks regions up inside itself).
    assert not [statement for statement in statements if statement.startswith("SELECT regions.")]

    async def region(sql: str) -> None:
        connection = await asyncpg.connect(demo_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    monkeypatch.setattr(regions, "MISS_RELOAD_SECONDS", 0.0)
    asyncio.run(
        region("INSERT INTO regions VALUES ('62.71.99', 'district', 'Kecamatan Baru', '62.71')")
    )
    try:
        answer = api.graphql(REGION_PAGE, client, {"region": "62.71.99"})
    finally:
        asyncio.run(region("DELETE FROM regions WHERE code = '62.71.99'"))
    assert "errors" not in answer, answer
    assert answer["data"]["msmes"]["nodes"] == []


async def test_a_page_reads_only_the_columns_it_was_asked_for(engine: AsyncEngine) -> None:
    with recorded_statements(engine) as statements:
        result = await run(engine, KALTENG, "{ msmes(first: 3) { nodes { name } } }")
    assert result.errors is None
    (page,) = [statement for statement in statements if "FROM msmes" in statement]
    assert "msmes.name" in page
    assert "annual_turnover" not in page
    assert "nib" not in page


async def test_records_outside_the_jurisdiction_are_not_listed(engine: AsyncEngine) -> None:
    result = await run(
        engine, KALTENG, "{ msmes(first: 100) { totalCount nodes { province { code } } } }"
    )
    assert result.errors is None
    assert {node["province"]["code"] for node in result.data["msmes"]["nodes"]} == {"62"}


async def test_pages_follow_on_from_the_end_cursor(engine: AsyncEngine) -> None:
    document = """
    query Next($after: String) {
      msmes(first: 7, after: $after) { pageInfo { hasNextPage endCursor } nodes { nib } }
    }"""
    first = (await run(engine, KALTENG, document)).data["msmes"]
    second = (await run(engine, KALTENG, document, {"after": first["pageInfo"]["endCursor"]})).data[
        "msmes"
    ]
    both = [node["nib"] for node in first["nodes"] + second["nodes"]]
    assert first["pageInfo"]["hasNextPage"] is True
    assert len(both) == len(set(both)) == 14


async def test_lookup_by_nib_and_by_legal_entity_number(engine: AsyncEngine) -> None:
    result = await run(
        engine,
        KALTENG,
        """{
          msme(nib: "9990000000002") { name scale scaleHistory { scale effectiveFrom } }
          cooperative(legalEntityNo: "AHU-9990001.AH.01.26.TAHUN 2019") {
            name type memberCount district { name }
          }
        }""",
    )
    assert result.errors is None
    msme = result.data["msme"]
    assert msme["name"] == "Boga Contoh Lada"
    assert [change["scale"] for change in msme["scaleHistory"]] == ["MICRO", "SMALL"]
    cooperative = result.data["cooperative"]
    assert cooperative["memberCount"] == 412
    assert cooperative["district"]["name"] == "Pangkalan Lada"


async def test_lookup_outside_the_jurisdiction_answers_like_an_unknown_key(
    engine: AsyncEngine,
) -> None:
    kalbar_msme = await run(engine, KALTENG, '{ msme(nib: "9990000000003") { name } }')
    unknown = await run(engine, KALTENG, '{ msme(nib: "9990000099999") { name } }')
    assert kalbar_msme.errors is None
    assert unknown.errors is None
    assert kalbar_msme.data == unknown.data == {"msme": None}


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ('{ msme(nib: "12345") { name } }', "nib"),
        ('{ msme(nib: "99900000000a1") { name } }', "nib"),
        ('{ msmes(filter: {region: "63.99"}) { totalCount } }', "filter.region"),
        ('{ msmes(filter: {region: "Kalteng"}) { totalCount } }', "filter.region"),
        ("{ msmes(first: 101) { totalCount } }", "first"),
        ("{ msmes(first: 0) { totalCount } }", "first"),
        ('{ msmes(after: "bm90LWEtY3Vyc29y") { totalCount } }', "after"),
        ('{ msmes(filter: {kbliSection: "Z"}) { totalCount } }', "filter.kbliSection"),
        ('{ cooperative(legalEntityNo: "") { name } }', "legalEntityNo"),
    ],
)
async def test_bad_input_is_refused_with_a_code_naming_the_field(
    engine: AsyncEngine, document: str, field: str
) -> None:
    result = await run(engine, KALTENG, document)
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == field
    assert field in error.message


async def test_owner_data_is_not_read_without_pii_scope(engine: AsyncEngine) -> None:
    with recorded_statements(engine) as statements:
        result = await run(
            engine, KALTENG, "{ msmes(first: 5) { nodes { name owner { nik fullName } } } }"
        )
    assert result.data["msmes"]["nodes"][0]["owner"] is None
    assert {error.extensions["code"] for error in result.errors} == {"FORBIDDEN"}
    assert result.errors[0].extensions["requiredScopes"] == ["pii:read"]
    assert not any("msme_owners" in statement for statement in statements)


async def test_owner_data_is_read_with_pii_scope(engine: AsyncEngine) -> None:
    reader = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
    result = await run(engine, reader, '{ msme(nib: "9990000000001") { owner { fullName } } }')
    assert result.errors is None
    assert result.data["msme"]["owner"]["fullName"] == "Sri Contoh Rahayu"


async def test_cooperative_members_and_programme_participants_are_nested(
    engine: AsyncEngine,
) -> None:
    result = await run(
        engine,
        NATIONAL_READER,
        """{
          cooperatives(first: 20, filter: {region: "62"}) {
            nodes { memberMsmes(first: 3) { totalCount nodes { nib cooperative { name } } } }
          }
          programme(id: "PR-MBG") {
            name participants(first: 50) { role msme { nib } cooperative { name } }
          }
        }""",
    )
    assert result.errors is None
    members = [c["memberMsmes"] for c in result.data["cooperatives"]["nodes"]]
    assert any(m["totalCount"] > 0 for m in members)
    assert all(len(m["nodes"]) <= 3 for m in members)
    participants = result.data["programme"]["participants"]
    assert {p["role"] for p in participants} == {"supplier"}
    assert any(p["msme"] and p["msme"]["nib"] == "9990000000002" for p in participants)


async def test_indicators_come_with_targets_and_realisations(engine: AsyncEngine) -> None:
    ministry = principal(OrgKind.MINISTRY, "ID")
    result = await run(
        engine,
        ministry,
        """{ indicator(code: "KOP_PRODUKSI_VOLUME") {
              nameEn targets { year kind value jurisdiction { name } realisations { value } }
        } }""",
    )
    assert result.errors is None
    (target,) = result.data["indicator"]["targets"]
    assert target == {
        "year": 2025,
        "kind": "target",
        "value": "222000000000",
        "jurisdiction": {"name": "Kalimantan Tengah"},
        "realisations": [],
    }
