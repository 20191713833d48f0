"""R11 weighs a savings and loan's health rating, recorded through the API with the book year it
assessed: a KSP rated healthy passes, one rated tidak sehat fails, one without a rating (or with
one older than the book year due) goes to review, as does a cooperative of another type that
runs a savings-and-loan unit (KBLI 64142). The guarantor's reasons name none of these values."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.graphql import principal, run

PROVINCE = principal(OrgKind.PROVINCE, "62")
GUARANTOR = principal(OrgKind.BUMD, "62")
TODAY = date(2026, 12, 7)
"""Under rule set 2026.5, with six months' grace: the RAT, and the rating, for 2025 are due."""

CREATE = """mutation($input: CreateCooperativeInput!) {
  createCooperative(input: $input) { id version kspHealth kspHealthBookYear } }"""
UPDATE = """mutation($id: ID!, $version: Int!, $changes: CooperativeChanges!) {
  updateCooperative(id: $id, version: $version, changes: $changes) {
    version kspHealth kspHealthBookYear } }"""
READ = """query($number: String!) {
  cooperative(legalEntityNo: $number) { kspHealth kspHealthBookYear } }"""
CHECK = """mutation($request: EligibilityRequest!) {
  checkEligibility(request: $request) {
    verdict rulesetVersion results { ruleId outcome reason messageId messageEn } } }"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, TODAY)


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _number(serial: int) -> str:
    return f"AHU-77380{serial:02d}.AH.01.26.TAHUN 2019"


def _cooperative(serial: int, **fields: Any) -> dict[str, Any]:
    """An active KSP of Palangka Raya, its RAT for 2025 held: R11 turns on its rating alone."""
    return {
        "legalEntityNo": _number(serial),
        "name": "KSP Uji Kesehatan",
        "type": "SIMPAN_PINJAM",
        "region": "62.71",
        "kbliCode": "64141",
        "lastRatBookYear": 2025,
        **fields,
    }


async def _created(engine: AsyncEngine, serial: int, **fields: Any) -> dict[str, Any]:
    created = await run(engine, PROVINCE, CREATE, {"input": _cooperative(serial, **fields)})
    assert created.errors is None, created.errors
    record: dict[str, Any] = created.data["createCooperative"]
    return record


async def _checked(engine: AsyncEngine, serial: int) -> dict[str, Any]:
    request = {
        "legalEntityNo": _number(serial),
        "product": "JAMKRIDA_KTG_PRODUKTIF",
        "loanAmount": "100000000",
        "tenorMonths": 24,
        "attestation": {
            "maxCollectibility": 1,
            "hasOtherProductiveCredit": False,
            "feasibilityApproved": True,
            "onNationalBlacklist": False,
            "hasNpwp": True,
        },
    }
    checked = await run(engine, GUARANTOR, CHECK, {"request": request})
    assert checked.errors is None, checked.errors
    decision: dict[str, Any] = checked.data["checkEligibility"]
    assert decision["rulesetVersion"] == "2026.5"
    return decision


def _r11(decision: dict[str, Any]) -> tuple[str, str]:
    (r11,) = [r for r in decision["results"] if r["ruleId"] == "R11"]
    return r11["outcome"], r11["reason"]


def _reasons(decision: dict[str, Any]) -> str:
    return json.dumps([(r["messageId"], r["messageEn"]) for r in decision["results"]]).lower()


async def test_a_ksp_rated_sehat_passes_r11(engine: AsyncEngine) -> None:
    created = await _created(engine, 1, kspHealth="SEHAT", kspHealthBookYear=2025)
    assert (created["kspHealth"], created["kspHealthBookYear"]) == ("SEHAT", 2025)
    read = await run(engine, PROVINCE, READ, {"number": _number(1)})
    assert read.errors is None, read.errors
    assert read.data["cooperative"] == {"kspHealth": "SEHAT", "kspHealthBookYear": 2025}
    decision = await _checked(engine, 1)
    assert _r11(decision) == ("PASS", "pass")
    assert decision["verdict"] == "ELIGIBLE"


async def test_a_ksp_rated_tidak_sehat_fails_r11(engine: AsyncEngine) -> None:
    await _created(engine, 2, kspHealth="TIDAK_SEHAT", kspHealthBookYear=2025)
    decision = await _checked(engine, 2)
    assert _r11(decision) == ("FAIL", "unhealthy")
    assert decision["verdict"] == "NOT_ELIGIBLE"


async def test_a_ksp_without_a_rating_goes_to_review_as_before(engine: AsyncEngine) -> None:
    await _created(engine, 3)
    decision = await _checked(engine, 3)
    assert _r11(decision) == ("UNKNOWN", "health_unknown")
    assert decision["verdict"] == "NEEDS_REVIEW"


async def test_a_rating_older_than_the_book_year_due_goes_to_review(engine: AsyncEngine) -> None:
    """A rating of 2024's accounts says nothing of 2025's, whose RAT R11 requires."""
    await _created(engine, 4, kspHealth="TIDAK_SEHAT", kspHealthBookYear=2024)
    assert _r11(await _checked(engine, 4)) == ("UNKNOWN", "health_unknown")


async def test_a_cooperative_with_a_savings_and_loan_unit_has_its_rating_weighed(
    engine: AsyncEngine,
) -> None:
    """A consumer cooperative whose KBLI is 64142 (a USP) lends as a KSP does: unrated it goes
    to review, rated tidak sehat it fails, rated sehat it passes."""
    usp = {"type": "KONSUMEN", "kbliCode": "64142"}
    created = await _created(engine, 5, **usp)
    assert _r11(await _checked(engine, 5)) == ("UNKNOWN", "health_unknown")
    for health, expected, version in (
        ("TIDAK_SEHAT", ("FAIL", "unhealthy"), 1),
        ("SEHAT", ("PASS", "pass"), 2),
    ):
        changes = {"kspHealth": health, "kspHealthBookYear": 2025}
        variables = {"id": created["id"], "version": version, "changes": changes}
        updated = await run(engine, PROVINCE, UPDATE, variables)
        assert updated.errors is None, updated.errors
        assert updated.data["updateCooperative"]["kspHealth"] == health
        assert _r11(await _checked(engine, 5)) == expected


async def test_the_guarantor_s_reasons_name_no_value_of_the_record(engine: AsyncEngine) -> None:
    await _created(engine, 6, kspHealth="CUKUP_SEHAT", kspHealthBookYear=2025)
    decision = await _checked(engine, 6)
    assert _r11(decision) == ("PASS", "pass")
    reasons = _reasons(decision)
    for value in ("cukup_sehat", "cukup sehat", "64141", "62.71", _number(6).lower(), "2015"):
        assert value not in reasons, value


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"kspHealth": "SEHAT"}, "input.kspHealthBookYear", "is required with kspHealth"),
        ({"kspHealthBookYear": 2025}, "input.kspHealth", "is required with kspHealthBookYear"),
        (
            {"kspHealth": "SEHAT", "kspHealthBookYear": 2026},
            "input.kspHealthBookYear",
            "must be before 2026: a rating assesses a book year that has closed",
        ),
        (
            {"establishedOn": "2015-03-01", "kspHealth": "SEHAT", "kspHealthBookYear": 2014},
            "input.kspHealthBookYear",
            "is before 2015, the year the cooperative was established",
        ),
        (
            {
                "type": "PRODUSEN",
                "kbliCode": "10794",
                "kspHealth": "SEHAT",
                "kspHealthBookYear": 2025,
            },
            "input.kspHealth",
            "only a cooperative that runs savings and loans (type SIMPAN_PINJAM, or KBLI 64141, "
            "64142, 64145) has a health rating",
        ),
    ],
)
async def test_a_rating_is_refused_naming_the_field(
    engine: AsyncEngine, fields: dict[str, Any], field: str, reason: str
) -> None:
    refused = await run(engine, PROVINCE, CREATE, {"input": _cooperative(90, **fields)})
    assert refused.data is None or refused.data["createCooperative"] is None
    (error,) = refused.errors
    assert (error.extensions["code"], error.extensions["field"]) == ("BAD_USER_INPUT", field)
    assert error.message == f"{field}: {reason}"
