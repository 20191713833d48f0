"""What a guarantor's check reads from the register, through the real schema: an MSME
registered without its owner (by a client without pii:read) goes to review, it is not refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
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
    engine = create_engine(reference_url, statement_timeout_ms=10_000)
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
