"""What a guarantor's check reads from the register, through the real schema: an MSME
registered without its owner (by a client without pii:read) goes to review, it is not refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

PROVINCE = principal(OrgKind.PROVINCE, "62")  # records:write without pii:read
GUARANTOR = principal(OrgKind.BUMD, "62")

CREATE = """mutation { createMsme(input: {nib: "7790000000001", name: "Usaha Tanpa Pemilik",
  kbliCode: "10794", region: "62.71", establishedOn: "2020-01-01",
  capital: "50000000", annualTurnover: "240000000", turnoverYear: 2025}) { id } }"""
CHECK = """mutation { checkEligibility(request: {nib: "7790000000001",
  product: "JAMKRIDA_KTG_PRODUKTIF", loanAmount: "40000000", tenorMonths: 24,
  checkDate: "2026-01-15", attestation: {maxCollectibility: 1, hasOtherProductiveCredit: false,
  feasibilityApproved: true, onNationalBlacklist: false, hasNpwp: true}}) {
    verdict results { ruleId outcome reason } } }"""


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def test_an_msme_without_an_owner_on_record_goes_to_review_for_r08(
    engine: AsyncEngine,
) -> None:
    created = await run(engine, PROVINCE, CREATE)
    assert created.errors is None, created.errors
    checked = await run(engine, GUARANTOR, CHECK)
    assert checked.errors is None, checked.errors
    decision = checked.data["checkEligibility"]
    outcomes = {r["ruleId"]: (r["outcome"], r["reason"]) for r in decision["results"]}
    assert outcomes["R08"] == ("UNKNOWN", "nik_unknown")
    assert decision["verdict"] == "NEEDS_REVIEW"
    assert {rule for rule, (outcome, _) in outcomes.items() if outcome == "UNKNOWN"} == {"R08"}
    assert "FAIL" not in {outcome for outcome, _ in outcomes.values()}


def _cooperative(number: str, established: str | None) -> str:
    deed = f'establishedOn: "{established}", ' if established else ""
    return f"""mutation {{ createCooperative(input: {{legalEntityNo: "{number}",
      name: "Koperasi Uji Umur", type: PRODUSEN, region: "62.71", {deed}
      lastRatBookYear: 2024}}) {{ id establishedOn }} }}"""


async def _r03(engine: AsyncEngine, number: str) -> tuple[str, str]:
    check = CHECK.replace('nib: "7790000000001"', f'legalEntityNo: "{number}"')
    checked = await run(engine, GUARANTOR, check)
    assert checked.errors is None, checked.errors
    results = checked.data["checkEligibility"]["results"]
    return next((r["outcome"], r["reason"]) for r in results if r["ruleId"] == "R03")


async def test_a_cooperative_is_dated_by_its_deed_else_by_its_legal_entity_number(
    engine: AsyncEngine,
) -> None:
    """A legacy dinas number carries no date: R03 is unknown until the deed's date is recorded;
    a Kemenkumham number dates the cooperative by its year at the latest."""
    legacy = "518/BH/XVI.2/2010"
    created = await run(engine, PROVINCE, _cooperative(legacy, None))
    assert created.errors is None, created.errors
    assert await _r03(engine, legacy) == ("UNKNOWN", "unknown")

    recent = "518/BH/XVI.2/2025"
    created = await run(engine, PROVINCE, _cooperative(recent, "2025-09-01"))
    assert created.data["createCooperative"]["establishedOn"] == "2025-09-01"
    assert await _r03(engine, recent) == ("FAIL", "too_young")

    numbered = "AHU-7790001.AH.01.26.TAHUN 2019"
    assert (await run(engine, PROVINCE, _cooperative(numbered, None))).errors is None
    assert await _r03(engine, numbered) == ("PASS", "pass")


async def test_a_deed_dated_after_the_legal_entity_numbers_year_is_refused(
    engine: AsyncEngine,
) -> None:
    result = await run(
        engine, PROVINCE, _cooperative("AHU-7790002.AH.01.26.TAHUN 2019", "2021-05-01")
    )
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "input.establishedOn"
