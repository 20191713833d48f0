"""Record mutations through the real schema: jurisdiction, personal data, validation, history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from resolvers import calendar
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.support.statements import recorded_statements

KALTENG = principal(OrgKind.PROVINCE, "62")
KALTENG_PII = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
KALBAR = principal(OrgKind.PROVINCE, "61")
PALANGKA_RAYA = principal(OrgKind.REGENCY, "62.71")
MINISTRY = principal(OrgKind.MINISTRY, "ID")


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


CREATE = """
mutation Create($input: CreateMsmeInput!) {
  createMsme(input: $input) {
    id nib name scale version isActive capital annualTurnover
    regency { code } district { code } kbliSection
  }
}
"""
UPDATE = """
mutation Update($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) {
    id name scale version annualTurnover regency { code }
  }
}
"""
DEACTIVATE = """
mutation Deactivate($id: ID!, $version: Int!) {
  deactivateMsme(id: $id, version: $version) { id isActive version }
}
"""
READ = """
query Read($nib: String!) {
  msme(nib: $nib) {
    id name version isActive scale
    changes { clientId organisation operation version personalDataChanged
              fields { field before after } }
    scaleHistory { scale effectiveFrom annualSales }
  }
}
"""


def msme_input(nib: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "nib": nib,
        "name": "Keripik Kelakai Uji",
        "kbliCode": "10794",
        "region": "62.71",
        "district": "62.71.03",
        "capital": "150000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2025,
        "employees": 3,
    }
    return {**values, **overrides}


async def create(engine: AsyncEngine, nib: str, who: Any = KALTENG, **overrides: Any) -> Any:
    return await run(engine, who, CREATE, {"input": msme_input(nib, **overrides)})


def code_of(result: Any) -> str:
    assert result.errors, result
    return str(result.errors[0].extensions["code"])


async def count_nib(engine: AsyncEngine, nib: str) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM msmes WHERE nib = :n"), {"n": nib}
        )
        return int(found.scalar_one())


async def test_a_province_creates_an_msme_with_computed_scale_and_history(
    engine: AsyncEngine,
) -> None:
    result = await create(engine, "7770000000001")
    assert result.errors is None, result.errors
    created = result.data["createMsme"]
    assert created["scale"] == "MICRO"
    assert created["version"] == 1
    assert created["regency"]["code"] == "62.71"
    assert created["kbliSection"] == "C"
    read = await run(engine, KALTENG, READ, {"nib": "7770000000001"})
    msme = read.data["msme"]
    [change] = msme["changes"]
    assert change["operation"] == "create"
    assert change["clientId"] == KALTENG.client_id
    fields = {field["field"]: field for field in change["fields"]}
    assert fields["name"] == {"field": "name", "before": None, "after": "Keripik Kelakai Uji"}
    assert fields["capital"]["after"] == "150000000"
    assert msme["scaleHistory"] == [
        {
            "scale": "MICRO",
            "effectiveFrom": msme["scaleHistory"][0]["effectiveFrom"],
            "annualSales": "240000000",
        }
    ]


async def test_a_province_cannot_create_outside_its_jurisdiction(engine: AsyncEngine) -> None:
    kalbar = await create(engine, "7770000000002", KALBAR)
    assert code_of(kalbar) == "FORBIDDEN"
    assert kalbar.errors[0].extensions["field"] == "input.region"
    regency = await create(engine, "7770000000002", PALANGKA_RAYA, region="62.01", district=None)
    assert code_of(regency) == "FORBIDDEN"
    assert await count_nib(engine, "7770000000002") == 0


async def test_a_record_outside_the_jurisdiction_answers_like_a_missing_one(
    engine: AsyncEngine,
) -> None:
    created = (await create(engine, "7770000000003")).data["createMsme"]
    changes = {"name": "Diubah Kalbar"}
    outside = await run(
        engine, KALBAR, UPDATE, {"id": created["id"], "version": 1, "changes": changes}
    )
    missing = await run(
        engine, KALBAR, UPDATE, {"id": "987654321", "version": 1, "changes": changes}
    )
    assert code_of(outside) == code_of(missing) == "NOT_FOUND"
    assert outside.errors[0].message == missing.errors[0].message
    assert outside.errors[0].extensions == missing.errors[0].extensions
    assert missing.errors[0].extensions == {"code": "NOT_FOUND", "field": "id"}
    assert missing.errors[0].message == "id: no such record in your jurisdiction"
    deactivated = await run(engine, KALBAR, DEACTIVATE, {"id": created["id"], "version": 1})
    assert deactivated.errors[0].extensions == {"code": "NOT_FOUND", "field": "id"}
    read = (await run(engine, KALTENG, READ, {"nib": "7770000000003"})).data["msme"]
    assert (read["name"], read["version"], read["isActive"]) == ("Keripik Kelakai Uji", 1, True)


async def test_a_record_cannot_be_moved_out_of_the_jurisdiction(engine: AsyncEngine) -> None:
    created = (await create(engine, "7770000000004")).data["createMsme"]
    to_kalbar = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": created["id"], "version": 1, "changes": {"region": "61.71", "district": None}},
    )
    assert code_of(to_kalbar) == "FORBIDDEN"
    assert to_kalbar.errors[0].extensions["field"] == "changes.region"
    to_other_regency = await run(
        engine,
        PALANGKA_RAYA,
        UPDATE,
        {"id": created["id"], "version": 1, "changes": {"region": "62.01", "district": None}},
    )
    assert code_of(to_other_regency) == "FORBIDDEN"
    read = (await run(engine, KALTENG, READ, {"nib": "7770000000004"})).data["msme"]
    assert read["version"] == 1
    assert [change["operation"] for change in read["changes"]] == ["create"]


OWNER = {
    "nik": "6271995204880001",
    "fullName": "Sri Uji Rahayu",
    "sex": "F",
    "phone": "0812 0000 0001",
}


async def test_owner_data_is_written_only_with_pii_read(engine: AsyncEngine) -> None:
    refused = await create(engine, "7770000000005", KALTENG, owner=OWNER)
    assert code_of(refused) == "FORBIDDEN"
    assert refused.errors[0].extensions["requiredScopes"] == ["pii:read"]
    assert await count_nib(engine, "7770000000005") == 0

    created = await create(engine, "7770000000005", KALTENG_PII, owner=OWNER)
    assert created.errors is None, created.errors
    msme_id = created.data["createMsme"]["id"]
    owner = await run(
        engine, KALTENG_PII, '{ msme(nib: "7770000000005") { owner { nik fullName phone } } }'
    )
    assert owner.data["msme"]["owner"] == {
        "nik": OWNER["nik"],
        "fullName": OWNER["fullName"],
        "phone": "081200000001",
    }
    replace_owner = {"id": msme_id, "version": 1, "changes": {"owner": {**OWNER, "fullName": "X"}}}
    assert code_of(await run(engine, KALTENG, UPDATE, replace_owner)) == "FORBIDDEN"

    read = (await run(engine, KALTENG, READ, {"nib": "7770000000005"})).data["msme"]
    [change] = read["changes"]
    assert set(change["personalDataChanged"]) == {
        "owner.nik",
        "owner.fullName",
        "owner.sex",
        "owner.phone",
    }
    assert OWNER["nik"] not in str(change["fields"])


async def test_an_owner_from_tarakan_keeps_the_nik_first_issued_in_kalimantan_timur(
    engine: AsyncEngine,
) -> None:
    """Tarakan was Kalimantan Timur's city 64.73 until Kalimantan Utara was formed (UU 20/2012):
    a NIK issued there before keeps 64.73, a code today's list of regions no longer holds."""
    owner = {**OWNER, "nik": "6473015204880001"}
    created = await create(engine, "7770000000015", KALTENG_PII, owner=owner)
    assert created.errors is None, created.errors


async def test_a_client_without_records_write_is_refused(engine: AsyncEngine) -> None:
    result = await create(engine, "7770000000006", MINISTRY)
    assert code_of(result) == "FORBIDDEN"
    assert result.errors[0].extensions["requiredScopes"] == ["records:write"]
    assert result.data["createMsme"] is None
    assert await count_nib(engine, "7770000000006") == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nib": "777000000007"}, "input.nib"),
        ({"kbliCode": "04123"}, "input.kbliCode"),
        ({"region": "62"}, "input.region"),
        ({"region": "62.98", "district": None}, "input.region"),
        ({"district": "62.01.05"}, "input.district"),
        ({"district": "62.71.99"}, "input.district"),
        ({"name": "   "}, "input.name"),
        ({"name": "\u2800"}, "input.name"),  # the Braille blank draws nothing
        ({"name": "\u0301\u0301"}, "input.name"),  # combining marks on nothing
        ({"owner": {**OWNER, "fullName": "\u0301 ."}}, "input.owner.fullName"),
        ({"employees": -1}, "input.employees"),
        ({"turnoverYear": 2999}, "input.turnoverYear"),
        ({"establishedOn": "2025-03-01", "turnoverYear": 2024}, "input.turnoverYear"),
        ({"scale": "MEDIUM"}, "input.scale"),
        ({"capital": None, "annualTurnover": None}, "input.scale"),
        ({"owner": {**OWNER, "nik": "6271991513880001"}}, "input.owner.nik"),
        ({"owner": {**OWNER, "sex": "X"}}, "input.owner.sex"),
    ],
)
async def test_invalid_input_is_refused_naming_the_field(
    engine: AsyncEngine, overrides: dict[str, Any], field: str
) -> None:
    variables = {"input": {**msme_input("7770000000007"), **overrides}}
    result = await run(engine, KALTENG_PII, CREATE, variables)
    assert code_of(result) == "BAD_USER_INPUT"
    error = result.errors[0]
    assert error.extensions["field"] == field
    assert error.message.startswith(field)
    assert "Traceback" not in error.message
    assert "6271991513880001" not in error.message
    assert await count_nib(engine, variables["input"]["nib"]) == 0


async def test_negative_money_is_refused_before_anything_runs(engine: AsyncEngine) -> None:
    result = await create(engine, "7770000000008", capital="-5")
    assert code_of(result) == "BAD_USER_INPUT"
    assert "capital" in result.errors[0].message


async def test_every_broken_rule_of_an_input_is_listed(engine: AsyncEngine) -> None:
    result = await create(engine, "123", kbliCode="04123", name="")
    problems = result.errors[0].extensions["problems"]
    assert {problem["field"] for problem in problems} == {
        "input.nib",
        "input.name",
        "input.kbliCode",
    }


async def test_a_taken_nib_is_a_conflict(engine: AsyncEngine) -> None:
    assert (await create(engine, "7770000000009")).errors is None
    again = await create(engine, "7770000000009", name="Lain")
    assert code_of(again) == "CONFLICT"
    assert again.errors[0].extensions["field"] == "input.nib"
    assert again.errors[0].message == "input.nib: is already registered"


async def test_a_stale_version_is_a_conflict_and_a_repeated_update_changes_nothing(
    engine: AsyncEngine,
) -> None:
    created = (await create(engine, "7770000000010")).data["createMsme"]
    first = {"id": created["id"], "version": 1, "changes": {"name": "Nama Baru"}}
    updated = await run(engine, KALTENG, UPDATE, first)
    assert updated.data["updateMsme"]["version"] == 2
    stale = await run(engine, KALTENG, UPDATE, first)
    assert code_of(stale) == "CONFLICT"
    assert stale.errors[0].extensions["currentVersion"] == 2
    same = await run(engine, KALTENG, UPDATE, {**first, "version": 2})
    assert same.data["updateMsme"]["version"] == 2
    read = (await run(engine, KALTENG, READ, {"nib": "7770000000010"})).data["msme"]
    assert [change["operation"] for change in read["changes"]] == ["create", "update"]
    assert read["changes"][1]["fields"] == [
        {"field": "name", "before": "Keripik Kelakai Uji", "after": "Nama Baru"}
    ]


async def test_new_figures_recompute_the_scale_and_extend_the_scale_history(
    engine: AsyncEngine,
) -> None:
    created = (await create(engine, "7770000000011")).data["createMsme"]
    grown = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": created["id"], "version": 1, "changes": {"annualTurnover": "2600000000"}},
    )
    assert grown.data["updateMsme"]["scale"] == "SMALL"
    read = (await run(engine, KALTENG, READ, {"nib": "7770000000011"})).data["msme"]
    assert read["scaleHistory"][-1]["scale"] == "SMALL"
    fields = {field["field"] for field in read["changes"][-1]["fields"]}
    assert fields == {"annualTurnover", "scale"}


REPORT = """
mutation Report($id: ID!, $version: Int!, $report: ScaleReport!) {
  reportScaleChange(id: $id, version: $version, report: $report) {
    scale version scaleHistory { scale effectiveFrom annualSales }
  }
}
"""


async def test_a_reported_scale_change_feeds_the_scale_history(engine: AsyncEngine) -> None:
    # 2019's figures, so that the backdated report below may rest on them (not on older ones)
    created = (await create(engine, "7770000000012", turnoverYear=2019)).data["createMsme"]
    today = calendar.today().isoformat()
    report = {"annualSales": "3000000000", "turnoverYear": 2019, "effectiveFrom": today}
    result = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert result.errors is None, result.errors
    answer = result.data["reportScaleChange"]
    assert (answer["scale"], answer["version"]) == ("SMALL", 2)
    assert answer["scaleHistory"][-1] == {
        "scale": "SMALL",
        "effectiveFrom": today,
        "annualSales": "3000000000",
    }
    backdated = {**report, "turnoverYear": 2019, "effectiveFrom": "2020-01-01"}
    late = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 2, "report": backdated}
    )
    assert code_of(late) == "BAD_USER_INPUT"
    assert late.errors[0].extensions["field"] == "report.effectiveFrom"


async def test_a_scale_change_cannot_rest_on_sales_of_a_later_year(engine: AsyncEngine) -> None:
    """A change effective in 2024 grounded on 2025's sales, not yet made when it took effect."""
    created = (await create(engine, "7770000000014")).data["createMsme"]
    report = {"annualSales": "3000000000", "turnoverYear": 2025, "effectiveFrom": "2024-12-31"}
    refused = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert refused.data == {"reportScaleChange": None}
    (error,) = refused.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "report.turnoverYear"}
    assert error.message == (
        "report.turnoverYear: must not be after 2024, the year of effectiveFrom: "
        "a scale cannot rest on sales not yet made when it took effect"
    )
    # Nothing was written: version 1 is current and takes the report dated today.
    taken = {**report, "effectiveFrom": calendar.today().isoformat()}
    result = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": taken}
    )
    assert result.errors is None, result.errors
    assert result.data["reportScaleChange"]["version"] == 2


async def test_a_scale_report_may_not_rest_on_sales_older_than_the_record_holds(
    engine: AsyncEngine,
) -> None:
    """Stored 2025 figures are not overwritten by 1950's, nor a business founded in 2025
    graded on sales of 2024, before it existed."""
    created = (await create(engine, "7736000000001")).data["createMsme"]
    today = calendar.today().isoformat()
    report = {"annualSales": "3000000000", "turnoverYear": 1950, "effectiveFrom": today}
    older = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert code_of(older) == "BAD_USER_INPUT"
    assert older.errors[0].extensions["field"] == "report.turnoverYear"
    assert "2025" in older.errors[0].message

    founded = msme_input("7736000000002", establishedOn="2025-03-01", turnoverYear=None)
    young = (await run(engine, KALTENG, CREATE, {"input": founded})).data["createMsme"]
    early = {**report, "turnoverYear": 2024}
    before = await run(engine, KALTENG, REPORT, {"id": young["id"], "version": 1, "report": early})
    assert code_of(before) == "BAD_USER_INPUT"
    assert before.errors[0].extensions["field"] == "report.turnoverYear"
    assert "2025" in before.errors[0].message
    same = {**report, "turnoverYear": 2025}
    taken = await run(engine, KALTENG, REPORT, {"id": young["id"], "version": 1, "report": same})
    assert taken.errors is None, taken.errors


async def test_deactivation_keeps_the_record_and_records_who(engine: AsyncEngine) -> None:
    created = (await create(engine, "7770000000013")).data["createMsme"]
    result = await run(engine, PALANGKA_RAYA, DEACTIVATE, {"id": created["id"], "version": 1})
    assert result.data["deactivateMsme"] == {"id": created["id"], "isActive": False, "version": 2}
    read = (await run(engine, KALTENG, READ, {"nib": "7770000000013"})).data["msme"]
    change = read["changes"][-1]
    assert (change["operation"], change["clientId"]) == ("deactivate", PALANGKA_RAYA.client_id)
    assert change["fields"] == [{"field": "isActive", "before": "true", "after": "false"}]


async def test_the_history_of_a_page_of_records_costs_one_statement(engine: AsyncEngine) -> None:
    for index in range(20, 26):
        await create(engine, f"77700000000{index}")
    page = "query($n: Int!) { msmes(first: $n) { nodes { nib changes { operation } } } }"

    async def statements(size: int) -> int:
        with recorded_statements(engine) as seen:
            result = await run(engine, KALTENG, page, {"n": size})
        assert result.errors is None
        assert all(node["changes"] for node in result.data["msmes"]["nodes"])
        return len(seen)

    assert await statements(2) == await statements(6)
