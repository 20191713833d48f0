"""A decision, and a guarantee resting on it, is about the person who owned the business when it
was checked, whoever owns it later.

The audit entries of reading a decision back, reviewing it, recording or changing a guarantee on
it, and of the guarantee in `guaranteeChanges`, named the business's owner on the register at the
time of the read: once the province replaced the owner, the successor, whom the decision is not
about, and once it erased the owner, no one. The check now stores the NIK it read with the
decision (migration 0049); every later entry names it. The NIK goes out in no field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.decisions import ATTESTED, GUARANTOR, PROVINCE, decided, guarantor_equity
from tests.support.graphql import principal, run

CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
FORMER, SUCCESSOR = "6271995204889901", "6271995204889902"
"""The owner when the business was checked, and the one the province put in their place."""
NIB, UNREVIEWED_NIB, OLD_NIB = "7749900000001", "7749900000002", "7749900000003"

REPLACE = """
mutation SubjectOwner($id: ID!, $version: Int!, $owner: OwnerInput) {
  updateMsme(id: $id, version: $version, changes: {owner: $owner}) { version }
}
"""
READ = """
query SubjectRead($id: ID!) {
  eligibilityDecision(id: $id) {
    id subjectKey product rulesetVersion checkDate loanAmount tenorMonths verdict
    coverageAmount estimatedFee decidedAt finalVerdict
    results { ruleId code outcome reason messageId messageEn legalBasis }
    review { verdict reviewer reason reviewedByClient reviewedAt }
    replay { verdict sameAsStored }
  }
}
"""
REVIEW = """
mutation SubjectReview($id: ID!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Ir. Analis",
    reason: "collectibility confirmed") { finalVerdict }
}
"""
RECORD = """
mutation SubjectRecord($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id status } }
"""
STATUS = """
mutation SubjectStatus($id: ID!) {
  changeGuaranteeStatus(guaranteeId: $id, status: CLAIMED, effectiveOn: "2026-12-06") { status }
}
"""
FEED = """
query SubjectFeed($after: String) {
  guaranteeChanges(after: $after) { entries { id record } endCursor }
}
"""
# What the previous release stored for a check: every column but the subject's (a copy of a
# decision this release stored, as that release would have written it).
STORED_BY_THE_PREVIOUS_RELEASE = """
INSERT INTO eligibility_decisions (client_id, organisation, msme_id, cooperative_id, subject_key,
  province_code, regency_code, loan_amount, tenor_months, product, ruleset_version, check_date,
  facts, verdict, results, coverage_amount, estimated_fee)
SELECT client_id, organisation, msme_id, cooperative_id, subject_key, province_code, regency_code,
  loan_amount, tenor_months, product, ruleset_version, check_date, facts, verdict, results,
  coverage_amount, estimated_fee FROM eligibility_decisions WHERE id = :id
RETURNING id
"""
# What an insider holding the service's credentials would do to have decisions name no one.
UNDO_THE_SUBJECT = {
    "drop the trigger": "DROP TRIGGER eligibility_decisions_subject ON eligibility_decisions",
    "disable it": "ALTER TABLE eligibility_decisions DISABLE TRIGGER eligibility_decisions_subject",
    "replace its function": (
        "CREATE OR REPLACE FUNCTION eligibility_decision_subject() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
    ),
    "drop its function": "DROP FUNCTION eligibility_decision_subject() CASCADE",
}
WHO = "query SubjectWho($nik: String!) { personalDataAccess(nik: $nik) { clientId } }"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, date(2026, 12, 6))


async def _data(engine: AsyncEngine, who: Any, document: str, variables: dict[str, Any]) -> Any:
    result = await run(engine, who, document, variables)
    assert result.errors is None, result.errors
    (data,) = result.data.values()
    return data


async def _subjects(engine: AsyncEngine, operation: str) -> list[str]:
    """The data subjects of the latest audit entry of `operation`."""
    statement = text(
        "SELECT subjects FROM audit_log WHERE entry->>'operation' = :operation"
        " ORDER BY seq DESC LIMIT 1"
    )
    async with engine.connect() as connection:
        subjects = (await connection.execute(statement, {"operation": operation})).scalar_one()
    return sorted(subjects)


async def _checked(
    engine: AsyncEngine, nib: str, attestation: Mapping[str, Any]
) -> tuple[str, str]:
    """An MSME owned by FORMER, checked by the guarantor: its id and the decision's."""
    checked = await decided(engine, nib, FORMER, attestation)
    assert await _subjects(engine, "DecisionCheck") == [FORMER]
    return checked


async def _replace_then_erase(engine: AsyncEngine, msme_id: str) -> AsyncIterator[str]:
    """Replace the owner by SUCCESSOR, then erase the owner, yielding after each."""
    successor = {"nik": SUCCESSOR, "fullName": "Budi Penerus"}
    await _data(engine, PROVINCE, REPLACE, {"id": msme_id, "version": 1, "owner": successor})
    yield "replaced"
    await _data(engine, PROVINCE, REPLACE, {"id": msme_id, "version": 2, "owner": None})
    yield "erased"


async def _listed(engine: AsyncEngine, nik: str) -> set[str]:
    return {row["clientId"] for row in await _data(engine, CUSTODIAN, WHO, {"nik": nik})}


async def test_a_decision_read_after_its_owner_changed_names_the_owner_it_was_about(
    engine: AsyncEngine, reference_url: str
) -> None:
    msme_id, decision = await _checked(engine, NIB, ATTESTED)
    await guarantor_equity(reference_url)
    feed_start = (await _data(engine, GUARANTOR, FEED, {"after": None}))["endCursor"]
    guarantee = {
        "decisionId": decision,
        "bank": "Bank Kalteng",
        "startsOn": "2026-12-06",
        "endsOn": "2027-12-06",
    }
    async for _ in _replace_then_erase(engine, msme_id):
        read = await _data(engine, GUARANTOR, READ, {"id": decision})
        assert FORMER not in str(read)
        assert SUCCESSOR not in str(read)
        assert await _subjects(engine, "SubjectRead") == [FORMER]
    recorded = await _data(engine, GUARANTOR, RECORD, {"g": guarantee})
    assert await _subjects(engine, "SubjectRecord") == [FORMER]
    await _data(engine, GUARANTOR, STATUS, {"id": recorded["id"]})
    assert await _subjects(engine, "SubjectStatus") == [FORMER]
    feed = await _data(engine, GUARANTOR, FEED, {"after": feed_start})
    assert recorded["id"] in {entry["id"] for entry in feed["entries"]}
    assert FORMER not in str(feed)
    assert await _subjects(engine, "SubjectFeed") == [FORMER]
    assert GUARANTOR.client_id in await _listed(engine, FORMER)
    assert GUARANTOR.client_id not in await _listed(engine, SUCCESSOR)


async def test_a_review_after_the_owner_changed_names_the_owner_it_was_about(
    engine: AsyncEngine,
) -> None:
    unreviewed = {key: value for key, value in ATTESTED.items() if key != "maxCollectibility"}
    msme_id, decision = await _checked(engine, UNREVIEWED_NIB, unreviewed)
    async for _ in _replace_then_erase(engine, msme_id):
        pass
    await _data(engine, GUARANTOR, REVIEW, {"id": decision})
    assert await _subjects(engine, "SubjectReview") == [FORMER]


async def test_a_decision_stored_by_the_previous_release_names_its_owner(
    engine: AsyncEngine,
) -> None:
    """During a rolling upgrade an instance of the previous release, on the migrated database,
    stores its decisions without `subject_nik`: the database fills it in from the business's
    owner, so reading the decision on this release names them, and keeps naming them once the
    owner is replaced."""
    msme_id, checked = await _checked(engine, OLD_NIB, ATTESTED)
    async with engine.begin() as connection:
        stored = await connection.execute(text(STORED_BY_THE_PREVIOUS_RELEASE), {"id": checked})
        decision = str(stored.scalar_one())
    async for _ in _replace_then_erase(engine, msme_id):
        await _data(engine, GUARANTOR, READ, {"id": decision})
        assert await _subjects(engine, "SubjectRead") == [FORMER]


@pytest.mark.parametrize("statement", UNDO_THE_SUBJECT.values(), ids=UNDO_THE_SUBJECT.keys())
async def test_the_service_role_cannot_undo_the_subject_trigger(
    reference_url: str, statement: str
) -> None:
    connection = await asyncpg.connect(as_service(reference_url))
    try:
        with pytest.raises(asyncpg.PostgresError) as refused:
            await connection.execute(statement)
    finally:
        await connection.close()
    assert refused.value.sqlstate == "42501", refused.value  # insufficient_privilege
