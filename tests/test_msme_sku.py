"""Businesses registered by Surat Keterangan Usaha instead of (or before) a NIB, through the real
schema: created, given a NIB later, kept to their village and jurisdiction, and checked for a
guarantee by SKU."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from db.queries import guarantees
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.support.statements import recorded_statements
from tests.test_eligibility_api import CHECKED_ON, FULL_ATTESTATION, PRODUCT, SCENARIO_DATE
from tests.test_imports import IMPORT
from tests.test_imports import row as import_row

KALTENG = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
KALBAR = principal(OrgKind.PROVINCE, "61")
PALANGKA_RAYA = principal(OrgKind.REGENCY, "62.71")
GUARANTOR = replace(principal(OrgKind.BUMD, "62"), client_id="test-bumd-62-sku")
"""A guarantor of this module's own, whose equity it registers (`guarantor`)."""
PAHANDUT = "62.71.01.1001"  # a kelurahan of kecamatan Pahandut (62.71.01), Palangka Raya

CREATE = """
mutation Create($input: CreateMsmeInput!) {
  createMsme(input: $input) {
    id nib skuNumber skuIssuer version regency { code }
    changes { operation fields { field before after } }
  }
}
"""
UPDATE = """
mutation Update($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) {
    id nib skuNumber skuIssuer version changes { operation fields { field before after } }
  }
}
"""
CHECK = """
mutation Check($request: EligibilityRequest!) {
  checkEligibility(request: $request) { id verdict subjectKey results { ruleId outcome } }
}
"""
GUARANTEE = """
mutation Guarantee($guarantee: GuaranteeInput!) { recordGuarantee(guarantee: $guarantee) { id } }
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, CHECKED_ON)


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def guarantor(reference_url: str) -> None:
    """The guarantor's equity, registered as the owner does (`sinergi guarantors set-equity`)."""
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    async with owner.begin() as connection:
        await guarantees.set_equity(connection, GUARANTOR.client_id, 50_000_000_000, Decimal(20))
    await owner.dispose()


def business(sku_number: str | None, sku_issuer: str | None = PAHANDUT, **overrides: Any) -> Any:
    """An eligible micro business of Pahandut, with its owner, registered by SKU alone."""
    values: dict[str, Any] = {
        "skuNumber": sku_number,
        "skuIssuer": sku_issuer,
        "name": "Warung Uji Desa",
        "kbliCode": "10794",
        "region": "62.71",
        "district": "62.71.01",
        "establishedOn": "2020-01-01",
        "capital": "50000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2025,
        "owner": {"nik": "6271011508850001", "fullName": "Pemilik Uji"},
    }
    return {key: value for key, value in {**values, **overrides}.items() if value is not None}


async def create(engine: AsyncEngine, who: Any = KALTENG, **given: Any) -> Any:
    return await run(engine, who, CREATE, {"input": given})


def refusal(result: Any) -> tuple[str, str]:
    assert result.errors, result
    extensions = result.errors[0].extensions
    return extensions["code"], extensions["field"]


def fields_of(change: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {field["field"]: (field["before"], field["after"]) for field in change["fields"]}


async def test_a_business_with_an_sku_and_no_nib_is_created_in_its_one_spelling(
    engine: AsyncEngine,
) -> None:
    created = await create(engine, **business("  470 /  12/kel.pahandut/2024 "))
    assert created.errors is None, created.errors
    msme = created.data["createMsme"]
    assert (msme["nib"], msme["skuNumber"], msme["skuIssuer"]) == (
        None,
        "470 / 12/KEL.PAHANDUT/2024",
        PAHANDUT,
    )
    (creation,) = msme["changes"]
    assert fields_of(creation)["skuNumber"] == (None, "470 / 12/KEL.PAHANDUT/2024")
    assert fields_of(creation)["skuIssuer"] == (None, PAHANDUT)
    assert "nib" not in fields_of(creation)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"skuNumber": None, "skuIssuer": None}, "input.nib"),
        ({"nib": "12345"}, "input.nib"),  # an SKU does not excuse a malformed NIB
        ({"skuIssuer": None}, "input.skuIssuer"),
        ({"skuNumber": None}, "input.skuNumber"),
        ({"skuNumber": " "}, "input.skuNumber"),
        ({"skuNumber": "470/1/KEL/2024\u00e9"}, "input.skuNumber"),
        ({"skuIssuer": "62.71.01"}, "input.skuIssuer"),  # a kecamatan, not a village
        ({"skuIssuer": "62.71.01.5001"}, "input.skuIssuer"),  # no kind of village
        ({"skuIssuer": "62.71.02.1001"}, "input.skuIssuer"),  # not the business's kecamatan
    ],
)
async def test_a_business_without_a_whole_sku_or_a_nib_is_refused_naming_the_field(
    engine: AsyncEngine, given: dict[str, Any], field: str
) -> None:
    values = {**business("470/99/KEL/2024"), **given}
    result = await create(engine, **{key: value for key, value in values.items() if value})
    assert refusal(result) == ("BAD_USER_INPUT", field)


async def test_an_sku_registered_in_another_spelling_is_a_conflict_on_its_number(
    engine: AsyncEngine,
) -> None:
    first = await create(engine, **business("145/SKU/DS/2025", PAHANDUT[:-4] + "2003"))
    assert first.errors is None, first.errors
    again = await create(engine, **business(" 145/sku/ds/2025", PAHANDUT[:-4] + "2003"))
    assert refusal(again) == ("CONFLICT", "input.skuNumber")
    elsewhere = await create(engine, **business("145/SKU/DS/2025", PAHANDUT[:-4] + "2004"))
    assert elsewhere.errors is None, elsewhere.errors


async def test_a_regency_cannot_register_an_sku_issued_outside_it(engine: AsyncEngine) -> None:
    """Palangka Raya's writer may not put an SKU of Kotawaringin Barat's village on a business
    of its own, nor a business there; nor an SKU of a kecamatan the regions do not know."""
    outside = business("77/SKU/2025", "62.01.05.2001", district=None, owner=None)
    assert refusal(await create(engine, PALANGKA_RAYA, **outside)) == (
        "BAD_USER_INPUT",
        "input.skuIssuer",
    )
    moved = {**outside, "region": "62.01"}
    assert refusal(await create(engine, PALANGKA_RAYA, **moved)) == ("FORBIDDEN", "input.region")
    unknown = business("77/SKU/2025", "62.71.99.1001", district=None, owner=None)
    assert refusal(await create(engine, PALANGKA_RAYA, **unknown)) == (
        "BAD_USER_INPUT",
        "input.skuIssuer",
    )
    known = business("77/SKU/2025", "62.71.02.1001", district=None, owner=None)
    assert (await create(engine, PALANGKA_RAYA, **known)).errors is None


async def test_an_sku_business_gets_its_nib_later_and_keeps_a_nib_or_an_sku(
    engine: AsyncEngine,
) -> None:
    created = (await create(engine, **business("12/SKU/KEL/2023"))).data["createMsme"]
    key = {"id": created["id"], "version": created["version"]}
    given = await run(engine, KALTENG, UPDATE, {**key, "changes": {"nib": "7743000000001"}})
    assert given.errors is None, given.errors
    msme = given.data["updateMsme"]
    assert (msme["nib"], msme["skuNumber"], msme["version"]) == (
        "7743000000001",
        "12/SKU/KEL/2023",
        2,
    )
    assert fields_of(msme["changes"][-1]) == {"nib": (None, "7743000000001")}

    key["version"] = 2
    cleared = {"skuNumber": None, "skuIssuer": None}
    dropped = await run(engine, KALTENG, UPDATE, {**key, "changes": cleared})
    assert dropped.errors is None, dropped.errors
    key["version"] = 3
    bare = await run(engine, KALTENG, UPDATE, {**key, "changes": {"nib": None}})
    assert refusal(bare) == ("BAD_USER_INPUT", "changes.nib")
    moved = await run(
        engine,
        KALTENG,
        UPDATE,
        {
            **key,
            "changes": {
                "skuNumber": "1/X",
                "skuIssuer": PAHANDUT,
                "region": "62.01",
                "district": None,
            },
        },
    )
    assert refusal(moved) == ("BAD_USER_INPUT", "changes.skuIssuer")

    other = (await create(engine, **business("13/SKU/KEL/2023"))).data["createMsme"]
    taken = {"id": other["id"], "version": other["version"], "changes": {"nib": "7743000000001"}}
    assert refusal(await run(engine, KALTENG, UPDATE, taken)) == ("CONFLICT", "changes.nib")
    resent = {**taken, "changes": {"skuNumber": "12/sku/kel/2023", "skuIssuer": PAHANDUT}}
    assert (await run(engine, KALTENG, UPDATE, resent)).errors is None  # freed above


FEED = """
query($after: String) {
  msmeChanges(after: $after, first: 100) { entries { change record } endCursor hasMore }
}
"""


async def test_the_change_feed_carries_the_sku_and_the_nib_added_later(
    engine: AsyncEngine,
) -> None:
    """Read by a regency of its own here (Barito Timur, 62.13), so the feed is this test's."""
    given = business("3/SKU/2025", "62.13.01.2001", region="62.13", district="62.13.01")
    created = (await create(engine, **given)).data["createMsme"]
    changes = {"nib": "7743000000013"}
    key = {"id": created["id"], "version": created["version"]}
    assert (await run(engine, KALTENG, UPDATE, {**key, "changes": changes})).errors is None
    reader, after, entries = principal(OrgKind.REGENCY, "62.13"), None, []
    while True:
        page = (await run(engine, reader, FEED, {"after": after})).data["msmeChanges"]
        entries += [entry for entry in page["entries"] if entry["record"]["id"] == created["id"]]
        if not page["hasMore"]:
            break
        after = page["endCursor"]
    assert [entry["change"] for entry in entries] == ["CREATED", "UPDATED"]
    record = entries[-1]["record"]
    assert (record["nib"], record["skuNumber"], record["skuIssuer"]) == (
        "7743000000013",
        "3/SKU/2025",
        "62.13.01.2001",
    )


def _request(subject: dict[str, Any]) -> dict[str, Any]:
    return {
        **subject,
        "product": PRODUCT,
        "loanAmount": "40000000",
        "tenorMonths": 24,
        "checkDate": SCENARIO_DATE,
        "attestation": FULL_ATTESTATION,
    }


async def test_a_guarantor_checks_a_business_by_its_sku_as_by_its_nib(
    engine: AsyncEngine, guarantor: None
) -> None:
    """R01 counts the SKU as registration; the check reads as many statements either way, and a
    guarantee on it is recorded."""
    await create(engine, **business("9/SKU/2024", PAHANDUT[:-4] + "2009"))
    await create(engine, **business(None, None, nib="7743000000009"))
    by_sku = {"skuNumber": " 9/sku/2024", "skuIssuer": PAHANDUT[:-4] + "2009"}
    by_nib = {"request": _request({"nib": "7743000000009"})}
    assert (await run(engine, GUARANTOR, CHECK, by_nib)).errors is None  # the rules, read once
    with recorded_statements(engine) as read_by_sku:
        checked = await run(engine, GUARANTOR, CHECK, {"request": _request(by_sku)})
    assert checked.errors is None, checked.errors
    decision = checked.data["checkEligibility"]
    assert decision["verdict"] == "ELIGIBLE"
    assert decision["subjectKey"] == "62.71.01.2009 9/SKU/2024"
    assert {"ruleId": "R01", "outcome": "PASS"} in decision["results"]
    with recorded_statements(engine) as read_by_nib:
        assert (await run(engine, GUARANTOR, CHECK, by_nib)).errors is None
    assert len(read_by_sku) == len(read_by_nib)

    guarantee = {
        "decisionId": decision["id"],
        "bank": "Bank Kalteng",
        "startsOn": "2026-01-20",
        "endsOn": "2028-01-20",
    }
    recorded = await run(engine, GUARANTOR, GUARANTEE, {"guarantee": guarantee})
    assert recorded.errors is None, recorded.errors


async def test_a_guarantee_is_recorded_on_the_decisions_business_whoever_holds_its_nib_now(
    engine: AsyncEngine, guarantor: None
) -> None:
    """The recording reads the business again to apply the rules once more and place the
    guarantee. Read by the NIB the check was asked by, a NIB corrected since (now changeable)
    and taken by another business of another regency placed the guarantee in that one's regency,
    judged on that one's facts."""
    created = await create(engine, **business(None, None, nib="7748000000011"))
    checked_business = created.data["createMsme"]
    checked = await run(engine, GUARANTOR, CHECK, {"request": _request({"nib": "7748000000011"})})
    assert checked.data["checkEligibility"]["verdict"] == "ELIGIBLE", checked
    corrected = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": checked_business["id"], "version": 1, "changes": {"nib": "7748000000012"}},
    )
    assert corrected.errors is None, corrected.errors
    elsewhere = business(None, None, nib="7748000000011", region="62.13", district=None)
    assert (await create(engine, **elsewhere)).errors is None
    guarantee = {
        "decisionId": checked.data["checkEligibility"]["id"],
        "bank": "Bank Kalteng",
        "startsOn": "2026-01-20",
        "endsOn": "2028-01-20",
    }
    recorded = await run(engine, GUARANTOR, GUARANTEE, {"guarantee": guarantee})
    assert recorded.errors is None, recorded.errors
    async with engine.connect() as connection:
        placed = (
            await connection.exec_driver_sql(
                "SELECT msme_id, regency_code FROM guarantees WHERE id = $1::uuid",
                (recorded.data["recordGuarantee"]["id"],),
            )
        ).one()
    assert tuple(placed) == (int(checked_business["id"]), "62.71")


async def test_an_import_moving_a_business_away_from_its_skus_village_is_refused_by_row(
    engine: AsyncEngine,
) -> None:
    """The database keeps an SKU to its village's place, which the import did not check: one
    such row failed the whole import (INTERNAL, the valid rows unwritten too)."""
    given = business("21/SKU/2024", PAHANDUT, nib="7748000000021")
    assert (await create(engine, **given)).errors is None
    rows = [
        import_row("7748000000021", region="62.01", district=None),
        import_row("7748000000021", district="62.71.03"),
        import_row("7748000000022"),
    ]
    for moved, field in zip(rows[:2], ("region", "district"), strict=True):
        answer = await run(
            engine, KALTENG, IMPORT, {"rows": [moved, rows[2]], "mode": "VALID_ROWS"}
        )
        assert answer.errors is None, answer.errors
        (error,) = answer.data["importMsmes"]["errors"]
        assert (error["row"], error["field"]) == (1, field), error
        assert error["reason"].startswith("the business's SKU was issued in 62.71.01.1001"), error
    stored = await run(engine, KALTENG, '{ msme(nib: "7748000000022") { id } }', {})
    assert stored.data["msme"] is not None


async def test_a_business_outside_the_guarantors_province_answers_as_an_unknown_sku(
    engine: AsyncEngine,
) -> None:
    kalbar = business("5/SKU/2024", "61.71.01.1001", region="61.71", district="61.71.01")
    kalbar.pop("owner")
    assert (await create(engine, KALBAR, **kalbar)).errors is None
    outside = {"skuNumber": "5/SKU/2024", "skuIssuer": "61.71.01.1001"}
    unknown = {"skuNumber": "5/SKU/2024", "skuIssuer": "61.71.01.1002"}
    answers = [
        await run(engine, GUARANTOR, CHECK, {"request": _request(subject)})
        for subject in (outside, unknown)
    ]
    assert [answer.data for answer in answers] == [{"checkEligibility": None}] * 2
    assert [refusal(answer) for answer in answers] == [("NOT_FOUND", "request.skuNumber")] * 2
    assert answers[0].errors[0].message == answers[1].errors[0].message


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        ({"nib": "7743000000009", "skuNumber": "9/SKU/2024", "skuIssuer": PAHANDUT}, "request.nib"),
        ({"skuNumber": "9/SKU/2024"}, "request.skuIssuer"),
        ({"skuIssuer": PAHANDUT}, "request.skuNumber"),
        ({"skuNumber": "9/SKU/2024", "skuIssuer": "62.71"}, "request.skuIssuer"),
    ],
)
async def test_a_check_names_its_business_exactly_one_way(
    engine: AsyncEngine, subject: dict[str, Any], field: str
) -> None:
    answer = await run(engine, GUARANTOR, CHECK, {"request": _request(subject)})
    assert refusal(answer) == ("BAD_USER_INPUT", field)


IMPORT_CODED = """
mutation($rows: [MsmeImportRow!]!) {
  importMsmes(rows: $rows, mode: VALID_ROWS) {
    created updated unchanged errors { row field reason code }
  }
}
"""
MSME = 'query { msme(nib: "7786000000001") { id skuNumber skuIssuer name version } }'


async def imported(engine: AsyncEngine, who: Any, *rows: dict[str, Any]) -> dict[str, Any]:
    answer = await run(engine, who, IMPORT_CODED, {"rows": list(rows)})
    assert answer.errors is None, answer.errors
    return answer.data["importMsmes"]  # type: ignore[no-any-return]


async def test_an_import_registers_a_business_by_sku_and_gives_one_so_registered_its_nib(
    engine: AsyncEngine,
) -> None:
    """The row carrying the NIB of a business registered by SKU created a second record."""
    village = PAHANDUT[:-4] + "1201"
    created = await create(engine, **business("IMPG/1/2025", village, owner=None))
    msme_id = created.data["createMsme"]["id"]
    given = business("impg/1/2025", village, nib="7786000000001", name="Warung Uji Baru")
    answer = await imported(engine, KALTENG, {**given, "owner": None})
    assert (answer["created"], answer["updated"], answer["errors"]) == (0, 1, [])
    msme = (await run(engine, KALTENG, MSME, {})).data["msme"]
    assert msme == {
        "id": msme_id,
        "skuNumber": "IMPG/1/2025",
        "skuIssuer": village,
        "name": "Warung Uji Baru",
        "version": 2,
    }
    # A row without an SKU leaves the stored one; one without a NIB is keyed by its SKU.
    by_nib = {key: value for key, value in given.items() if not key.startswith("sku")}
    assert (await imported(engine, KALTENG, {**by_nib, "owner": None}))["unchanged"] == 1
    fresh = business("IMPG/1B/2025", village, owner=None)
    assert (await imported(engine, KALTENG, fresh))["created"] == 1
    count = "SELECT count(*) FROM msmes WHERE sku_issuer = $1"
    async with engine.connect() as connection:
        assert (await connection.exec_driver_sql(count, (village,))).scalar_one() == 2


async def test_an_import_refuses_an_sku_as_create_and_update_refuse_it(
    engine: AsyncEngine,
) -> None:
    """Palangka Raya's rows: a NIB and an SKU of two businesses (nothing is merged), an SKU of
    Kotawaringin Barat's village, one of Kalimantan Barat's held by a business there and one
    held by none (the same answer, telling nothing of that business), half an SKU."""
    village = PAHANDUT[:-4] + "1202"
    await create(engine, **business(None, None, nib="7786000000002", owner=None))
    await create(engine, **business("IMPG/2/2025", village, owner=None))
    kalbar = business("IMPG/3/2025", "61.71.01.1201", region="61.71", district="61.71.01")
    assert (await create(engine, KALBAR, **{**kalbar, "owner": None})).errors is None
    rows = [
        business("IMPG/2/2025", village, nib="7786000000002", owner=None),
        business("IMPG/3/2025", "62.01.05.2001", owner=None),
        business("IMPG/3/2025", "61.71.01.1201", owner=None),
        business("IMPG/3/2025", "61.71.01.1202", owner=None),
        business("IMPG/4/2025", None, owner=None),
    ]
    answer = await imported(engine, PALANGKA_RAYA, *rows)
    assert [(e["row"], e["field"], e["code"]) for e in answer["errors"]] == [
        (1, "skuNumber", "CONFLICT"),
        (2, "skuIssuer", "BAD_USER_INPUT"),
        (3, "skuIssuer", "BAD_USER_INPUT"),
        (4, "skuIssuer", "BAD_USER_INPUT"),
        (5, "skuIssuer", "BAD_USER_INPUT"),
    ]
    assert answer["errors"][2]["reason"] == answer["errors"][3]["reason"]
    assert (answer["created"], answer["updated"]) == (0, 0)
