"""A decision about a sole proprietor's business tells of the owner's finances: R02 weighs the
scale the figures band (annual sales, else capital), and the decision's verdict and rule results
say whether that band is one the product guarantees. Its audit entry named the owner as the data
subject but itemised no personal field, where the same band read as `Msme.scale` is itemised.
A decision or a guarantee handed out, whatever of it is selected, now itemises the figures its
rules weigh."""

from __future__ import annotations

from datetime import date
from itertools import count

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.clock import Clock
from tests.support.decisions import GUARANTOR, check_request, decided
from tests.support.graphql import run

CHECKED = count(931)
"""Each test's business and owner its own: the number ending its NIB and its owner's NIK."""
WEIGHED = {"Msme.annualTurnover", "Msme.capital", "Msme.scale"}
"""The owner's finances R02 weighs: the scale, banded from the annual sales or the capital."""
CHECK = """
mutation FinancesCheck($request: EligibilityRequest!) {
  checkEligibility(request: $request) { id results { ruleId messageEn } }
}
"""
READ = """
query FinancesRead($id: ID!) { eligibilityDecision(id: $id) { id verdict } }
"""
REVIEW = """
mutation FinancesReview($id: ID!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Ir. Analis",
    reason: "checked") { id }
}
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, date(2026, 12, 6))


@pytest.fixture
async def checked(engine: AsyncEngine, clock: Clock) -> tuple[str, str, str]:
    """A new business's NIB, its owner's NIK, and the ELIGIBLE decision about it, checked with
    `{ id }` (`DecisionCheck`)."""
    number = next(CHECKED)
    nib, nik = f"7749900000{number}", f"627199520488{number:04}"
    _, decision = await decided(engine, nib, nik)
    return nib, nik, decision


async def _audited(engine: AsyncEngine, operation: str) -> tuple[list[str], list[str]]:
    """The subjects and personal fields of the latest audit entry of `operation`."""
    statement = text(
        "SELECT subjects, entry->'personalFields' AS personal FROM audit_log"
        " WHERE entry->>'operation' = :operation ORDER BY seq DESC LIMIT 1"
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement, {"operation": operation})).one()
    return sorted(row.subjects), list(row.personal)


async def test_a_check_handing_out_its_results_itemises_the_figures_they_weigh(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    nib, nik, _ = checked
    again = await run(engine, GUARANTOR, CHECK, {"request": check_request(nib)})
    assert again.errors is None, again.errors
    subjects, personal = await _audited(engine, "FinancesCheck")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_a_check_handing_out_its_id_alone_itemises_them_too(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    """Over-recorded rather than worked out per field: the decision's own fields tell of the
    figures one way or another, and one rule is simpler to prove than a list of fields."""
    _, nik, _ = checked
    subjects, personal = await _audited(engine, "DecisionCheck")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_a_decision_read_itemises_the_figures_its_rules_weigh(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    _, nik, decision = checked
    read = await run(engine, GUARANTOR, READ, {"id": decision})
    assert read.errors is None, read.errors
    subjects, personal = await _audited(engine, "FinancesRead")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_a_review_refused_for_the_verdict_it_names_itemises_the_figures(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    """The refusal says the decision is ELIGIBLE, whatever the document selects."""
    _, nik, decision = checked
    refused = await run(engine, GUARANTOR, REVIEW, {"id": decision})
    assert refused.errors is not None
    assert "ELIGIBLE" in refused.errors[0].message
    subjects, personal = await _audited(engine, "FinancesReview")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED
