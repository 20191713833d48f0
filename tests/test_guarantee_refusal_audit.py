"""A refusal that tells a guarantor the state of one of its own decisions or guarantees is
audited as handing that decision or guarantee out, naming the person it is about.

A guarantee's status and dates, and a decision's verdict, are the business owner's personal data
(a credit decision; whether a guarantee defaulted: `resolvers.eligibility.handed_out`). The
refusals of a status change (its status cannot become the one asked; the change is dated before
the guarantee started or its latest change), of a review (the decision is not NEEDS_REVIEW, or
already reviewed), and of a guarantee (the decision is not eligible, or already guaranteed) each
said so in their message with no audit entry: a guarantor could poll a guarantee's status or a
decision's verdict and leave no trace. A decision or guarantee not found stays unaudited, as one
of no one.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.audit_trail import subjects_and_records
from tests.support.clock import Clock
from tests.support.decisions import ATTESTED, GUARANTOR, decided, guarantor_equity
from tests.support.graphql import run

NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"
RECORD = "mutation RefusalRecord($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id } }"
STATUS = """
mutation RefusalStatus($id: ID!, $status: GuaranteeStatus!, $on: Date!) {
  changeGuaranteeStatus(guaranteeId: $id, status: $status, effectiveOn: $on) { status }
}
"""
NOTED = """
mutation RefusalNote($id: ID!, $status: GuaranteeStatus!, $on: Date!, $note: String) {
  changeGuaranteeStatus(guaranteeId: $id, status: $status, effectiveOn: $on, note: $note) {
    status
  }
}
"""
BANKLESS = """
mutation RefusalBank($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id } }
"""
INELIGIBLE = """
mutation RefusalIneligible($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id } }
"""
REVIEW = """
mutation RefusalReview($id: ID!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Budi", reason: "ok") {
    id
  }
}
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, date(2026, 12, 6))


async def _decision(
    engine: AsyncEngine, reference_url: str, nib: str, nik: str, *, blacklisted: bool = False
) -> str:
    """A decision of the guarantor's about a new MSME owned by `nik`, the guarantor's equity
    registered: ELIGIBLE, or NOT_ELIGIBLE for an owner on the national blacklist."""
    attestation = {**ATTESTED, "onNationalBlacklist": blacklisted}
    _, decision_id = await decided(engine, nib, nik, attestation)
    await guarantor_equity(reference_url)
    return decision_id


def _guarantee(decision_id: str) -> dict[str, str]:
    return {
        "decisionId": decision_id,
        "bank": "Bank Kalteng",
        "startsOn": "2026-12-06",
        "endsOn": "2027-12-06",
    }


async def _recorded(engine: AsyncEngine, decision_id: str) -> str:
    recorded = await run(
        engine,
        GUARANTOR,
        "mutation RefusalSetUp($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id } }",
        {"g": _guarantee(decision_id)},
    )
    assert recorded.errors is None, recorded.errors
    return str(recorded.data["recordGuarantee"]["id"])


async def test_a_status_change_refused_by_the_guarantees_status_or_dates_is_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    nik = "6271995204889921"
    guarantee_id = await _recorded(
        engine, await _decision(engine, reference_url, "7749900000021", nik)
    )

    missing = await run(
        engine, GUARANTOR, STATUS, {"id": NO_SUCH_ID, "status": "CLAIMED", "on": "2026-12-06"}
    )
    (error,) = missing.errors
    assert error.extensions["code"] == "NOT_FOUND"
    assert await subjects_and_records(engine, "RefusalStatus") == []

    early = await run(
        engine, GUARANTOR, STATUS, {"id": guarantee_id, "status": "CLAIMED", "on": "2026-01-01"}
    )
    (error,) = early.errors
    assert "2026-12-06" in error.message  # the guarantee's start
    assert await subjects_and_records(engine, "RefusalStatus") == [([nik], {"guarantee": 1})]

    defaulted = await run(
        engine, GUARANTOR, STATUS, {"id": guarantee_id, "status": "DEFAULTED", "on": "2026-12-06"}
    )
    assert defaulted.errors is None, defaulted.errors
    final = await run(
        engine, GUARANTOR, STATUS, {"id": guarantee_id, "status": "ACTIVE", "on": "2030-01-01"}
    )
    (error,) = final.errors
    assert "a defaulted guarantee can become none" in error.message
    assert await subjects_and_records(engine, "RefusalStatus") == [([nik], {"guarantee": 1})] * 3


async def test_a_review_refused_as_the_decision_is_not_awaiting_one_is_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    nik = "6271995204889922"
    decision_id = await _decision(engine, reference_url, "7749900000022", nik)

    missing = await run(engine, GUARANTOR, REVIEW, {"id": NO_SUCH_ID})
    (error,) = missing.errors
    assert error.extensions["code"] == "NOT_FOUND"
    assert await subjects_and_records(engine, "RefusalReview") == []

    refused = await run(engine, GUARANTOR, REVIEW, {"id": decision_id})
    (error,) = refused.errors
    assert error.extensions["code"] == "CONFLICT"
    assert "this one is ELIGIBLE" in error.message
    assert await subjects_and_records(engine, "RefusalReview") == [
        ([nik], {"eligibility_decision": 1})
    ]


async def test_a_guarantee_refused_as_the_decision_is_already_guaranteed_is_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    nik = "6271995204889923"
    decision_id = await _decision(engine, reference_url, "7749900000023", nik)
    await _recorded(engine, decision_id)

    again = await run(engine, GUARANTOR, RECORD, {"g": _guarantee(decision_id)})
    (error,) = again.errors
    assert error.extensions["code"] == "CONFLICT"
    assert "already guaranteed" in error.message
    assert await subjects_and_records(engine, "RefusalRecord") == [([nik], {"guarantee": 1})]


async def test_a_guarantee_refused_as_the_decision_is_not_eligible_is_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    nik = "6271995204889924"
    decision_id = await _decision(engine, reference_url, "7749900000024", nik, blacklisted=True)

    refused = await run(engine, GUARANTOR, INELIGIBLE, {"g": _guarantee(decision_id)})
    (error,) = refused.errors
    assert "is NOT_ELIGIBLE" in error.message
    assert await subjects_and_records(engine, "RefusalIneligible") == [
        ([nik], {"eligibility_decision": 1})
    ]


async def test_a_status_change_refused_for_its_note_alone_is_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    """A note too long with an allowed status and date is refused for the note alone, which
    tells that the transition and date were allowed: polled status by status, it read the
    guarantee's status and latest date with no trace."""
    nik = "6271995204889925"
    guarantee_id = await _recorded(
        engine, await _decision(engine, reference_url, "7749900000025", nik)
    )
    variables = {"id": guarantee_id, "status": "CLAIMED", "on": "2026-12-06", "note": "x" * 1001}
    refused = await run(engine, GUARANTOR, NOTED, variables)
    (error,) = refused.errors
    assert error.extensions["field"] == "note"
    assert await subjects_and_records(engine, "RefusalNote") == [([nik], {"guarantee": 1})]


async def test_a_guarantee_refused_for_its_bank_alone_is_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    """An empty bank is refused only once the decision is found eligible and unguaranteed,
    which the refusal tells."""
    nik = "6271995204889926"
    decision_id = await _decision(engine, reference_url, "7749900000026", nik)
    refused = await run(engine, GUARANTOR, BANKLESS, {"g": {**_guarantee(decision_id), "bank": ""}})
    (error,) = refused.errors
    assert "bank" in error.message
    assert await subjects_and_records(engine, "RefusalBank") == [
        ([nik], {"eligibility_decision": 1})
    ]
