"""What a guarantor's check reads from the register, through the real schema: an MSME
registered without its owner (by a client without pii:read) goes to review, it is not refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.graphql import principal, run
from tests.support.http import Api, served
from tests.test_eligibility_api import CHECK as CHECK_OVER_HTTP
from tests.test_eligibility_api import (
    CHECKED_ON,
    DECISION,
    FULL_ATTESTATION,
    JAMKRIDA,
    _decision,
    _request,
)

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


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Checks dated 2026-01-15 are made days later: a check may be dated a fortnight back."""
    return Clock(monkeypatch, CHECKED_ON)


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


def _cooperative(number: str, established: str | None, rat_book_year: int | None = 2024) -> str:
    """A cooperative with its deed's date, if any, and the book year of its last RAT, if any:
    one founded in 2025 has held none for an earlier year."""
    deed = f'establishedOn: "{established}", ' if established else ""
    rat = f"lastRatBookYear: {rat_book_year}" if rat_book_year else ""
    return f"""mutation {{ createCooperative(input: {{legalEntityNo: "{number}",
      name: "Koperasi Uji Umur", type: PRODUSEN, region: "62.71", {deed}
      {rat}}}) {{ id establishedOn }} }}"""


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
    created = await run(engine, PROVINCE, _cooperative(recent, "2025-09-01", None))
    assert created.data["createCooperative"]["establishedOn"] == "2025-09-01"
    assert await _r03(engine, recent) == ("FAIL", "too_young")

    numbered = "AHU-7790001.AH.01.26.TAHUN 2019"
    assert (await run(engine, PROVINCE, _cooperative(numbered, None))).errors is None
    assert await _r03(engine, numbered) == ("PASS", "pass")


async def test_a_cooperative_dated_by_its_number_alone_is_reviewed_not_refused_as_too_young(
    engine: AsyncEngine,
) -> None:
    """A number of 2025 says the cooperative was founded by 31 December 2025 at the latest: in
    January 2026 it may have run six months (founded in February 2025) or not, so R03 is UNKNOWN
    and the decision goes to review. It was refused as too young, its reason quoting the bound
    as the day the business started, a date never recorded."""
    number = "AHU-7780030.AH.01.26.TAHUN 2025"
    created = await run(engine, PROVINCE, _cooperative(number, None))
    assert created.errors is None, created.errors
    assert created.data["createCooperative"]["establishedOn"] is None
    check = CHECK.replace('nib: "7790000000001"', f'legalEntityNo: "{number}"')
    check = check.replace('loanAmount: "40000000"', 'loanAmount: "50000000"')
    checked = await run(engine, GUARANTOR, check.replace("reason }", "reason messageEn }"))
    assert checked.errors is None, checked.errors
    decision = checked.data["checkEligibility"]
    r03 = next(r for r in decision["results"] if r["ruleId"] == "R03")
    assert (r03["outcome"], r03["reason"]) == ("UNKNOWN", "unknown")
    assert "2025-12-31" not in r03["messageEn"]
    assert decision["verdict"] == "NEEDS_REVIEW"
    assert {r["ruleId"] for r in decision["results"] if r["outcome"] == "UNKNOWN"} == {"R03"}


async def test_a_check_finds_a_cooperative_by_its_older_number_in_any_case(
    engine: AsyncEngine,
) -> None:
    """An older number is registered once in any case, so a guarantor checking
    `600/bh/xiv/2001` is checking the cooperative registered as `600/BH/XIV/2001`: it was
    answered as no such cooperative, though registering the number again was refused."""
    created = await run(engine, PROVINCE, _cooperative("600/BH/XIV/2001", None))
    assert created.errors is None, created.errors
    for spelling in ("600/BH/XIV/2001", "600/bh/xiv/2001"):
        assert await _r03(engine, spelling) == ("UNKNOWN", "unknown"), spelling


async def test_a_deed_dated_after_the_legal_entity_numbers_year_is_refused(
    engine: AsyncEngine,
) -> None:
    result = await run(
        engine, PROVINCE, _cooperative("AHU-7790002.AH.01.26.TAHUN 2019", "2021-05-01")
    )
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "input.establishedOn"


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    """The app over a database of this module's own, with the demo clients: the province
    registers businesses over HTTP and PT Jamkrida Kalteng checks them, as they would."""
    demo_clients(module_reference_url)
    with served(module_reference_url) as served_api:
        yield served_api


CREATE_MSME = """
mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id version scale declaredScale } }
"""


def _register(api: Api, nib: str, **figures: Any) -> dict[str, Any]:
    """An MSME of Palangka Raya with its owner on record, running since 2020, and `figures`."""
    business = {
        "nib": nib,
        "name": "Usaha Uji Skala",
        "kbliCode": "10794",
        "region": "62.71",
        "establishedOn": "2020-01-01",
        "owner": {"nik": "6271014101800001", "fullName": "Pemilik Uji", "sex": "F"},
        **figures,
    }
    created = api.graphql(CREATE_MSME, "demo-province-62", {"input": business})
    assert "errors" not in created, created
    record: dict[str, Any] = created["data"]["createMsme"]
    return record


def _checked(api: Api, nib: str) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    request = _request({"nib": nib}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(api.graphql(CHECK_OVER_HTTP, JAMKRIDA, {"request": request}))
    outcomes = {r["ruleId"]: (r["outcome"], r["reason"]) for r in decision["results"]}
    return decision, outcomes


def test_r02_reads_the_scale_from_annual_sales_not_the_declared_one(api: Api) -> None:
    """Declared micro, which its capital supports, but with Rp60 miliar of sales: large under
    PP 7/2021 Pasal 35(4), the criterion programmes act on, so the product does not guarantee it."""
    declared = _register(
        api, "7790000000101", capital="500000000", annualTurnover="60000000000", scale="MICRO"
    )
    # The register keeps the scale the sales give, and what was declared beside it.
    assert (declared["scale"], declared["declaredScale"]) == ("LARGE", "MICRO")
    decision, outcomes = _checked(api, "7790000000101")
    assert outcomes["R02"] == ("FAIL", "scale_not_allowed")
    assert decision["verdict"] == "NOT_ELIGIBLE"
    (r02,) = [r for r in decision["results"] if r["ruleId"] == "R02"]
    assert "(large)" in r02["messageEn"]
    replayed = api.graphql(DECISION, JAMKRIDA, {"id": decision["id"]})
    assert replayed["data"]["eligibilityDecision"]["replay"] == {
        "verdict": "NOT_ELIGIBLE",
        "sameAsStored": True,
    }


def test_r02_falls_back_to_capital_only_without_sales_and_is_unknown_without_either(
    api: Api,
) -> None:
    _register(api, "7790000000102", capital="4000000000")  # small by capital
    assert _checked(api, "7790000000102")[1]["R02"] == ("PASS", "pass")
    _register(api, "7790000000103", capital="20000000000")  # large by capital
    assert _checked(api, "7790000000103")[1]["R02"] == ("FAIL", "scale_not_allowed")
    _register(api, "7790000000104", scale="MICRO")  # declared, with no figure to support it
    decision, outcomes = _checked(api, "7790000000104")
    assert outcomes["R02"] == ("UNKNOWN", "scale_unknown")
    assert decision["verdict"] == "NEEDS_REVIEW"


DEACTIVATE_MSME = """
mutation($id: ID!, $version: Int!) { deactivateMsme(id: $id, version: $version) { isActive } }
"""


def _forget_the_inactive_mark(url: str, decision_id: str) -> None:
    """The decision's facts as stored before the register's activity was gathered."""

    async def strip() -> None:
        connection = await asyncpg.connect(url)
        try:
            updated = await connection.execute(
                "UPDATE eligibility_decisions SET facts = facts - 'marked_inactive' "
                "WHERE id = $1::uuid AND facts ? 'marked_inactive'",
                decision_id,
            )
            assert updated == "UPDATE 1"
        finally:
            await connection.close()

    asyncio.run(strip())


def _replay(api: Api, decision_id: str) -> dict[str, Any]:
    replayed = api.graphql(DECISION, JAMKRIDA, {"id": decision_id})
    assert "errors" not in replayed, replayed
    replay: dict[str, Any] = replayed["data"]["eligibilityDecision"]["replay"]
    return replay


def test_an_msme_marked_inactive_fails_r01_and_earlier_decisions_replay_unchanged(
    api: Api, module_reference_url: str
) -> None:
    """deactivateMsme marks a closed business: a check must not pass it silently. It is known to
    be closed, not unknown, so R01 fails rather than sending it to a reviewer."""
    created = _register(api, "7790000000201", capital="50000000", annualTurnover="240000000")
    open_, _ = _checked(api, "7790000000201")
    assert open_["verdict"] == "ELIGIBLE"
    deactivated = api.graphql(
        DEACTIVATE_MSME, "demo-province-62", {"id": created["id"], "version": created["version"]}
    )
    assert deactivated["data"]["deactivateMsme"] == {"isActive": False}, deactivated

    closed, outcomes = _checked(api, "7790000000201")
    assert outcomes["R01"] == ("FAIL", "inactive")
    assert {rule for rule, (outcome, _) in outcomes.items() if outcome == "FAIL"} == {"R01"}
    assert closed["verdict"] == "NOT_ELIGIBLE"
    (r01,) = [r for r in closed["results"] if r["ruleId"] == "R01"]
    assert r01["messageEn"] == "The business is marked inactive in the register."
    assert _replay(api, closed["id"]) == {"verdict": "NOT_ELIGIBLE", "sameAsStored": True}

    # The earlier decision replays from its own facts, whatever the register says now; and so
    # does one whose facts were stored before the activity was among them.
    assert _replay(api, open_["id"]) == {"verdict": "ELIGIBLE", "sameAsStored": True}
    _forget_the_inactive_mark(module_reference_url, open_["id"])
    assert _replay(api, open_["id"]) == {"verdict": "ELIGIBLE", "sameAsStored": True}
