"""A participation's status is one of five (domain/participations.py): R12 counts a
subsidised-credit programme while its participation is ACTIVE, and no other spelling of that
word ("Active", "aktif", "activе" with a Cyrillic е) gets past the schema to say otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from domain.participations import ParticipationStatus
from schema.enums import ParticipationStatus as StatusEnum
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.graphql import principal, run

PROVINCE = principal(OrgKind.PROVINCE, "62")
REGENCY = principal(OrgKind.REGENCY, "62.71")
GUARANTOR = principal(OrgKind.BUMD, "62")
KUR = "PR-UJI-KUR-62"
"""A subsidised-credit programme of this module's own (the shipped programmes have none), owned
by Kalteng's dinas (`PROVINCE`), which alone may mark its participations VERIFIED."""
LOOKALIKES = ["Active", "ACTIVE ", "aktif", "activ\u0435", "active", "Aktif"]

CREATE_MSME = """mutation($nib: String!) { createMsme(input: {nib: $nib, name: "Usaha Uji KUR",
  kbliCode: "10794", region: "62.71", establishedOn: "2020-01-01", capital: "50000000",
  annualTurnover: "240000000", turnoverYear: 2025}) { id } }"""
ADD = """mutation($input: ParticipationInput!) {
  addParticipation(input: $input) { id status version } }"""
CHANGE = """mutation($id: ID!, $version: Int!, $changes: ParticipationChanges!) {
  updateParticipation(id: $id, version: $version, changes: $changes) { status version } }"""
READ = """query($nib: String!) { msme(nib: $nib) { participations { id status version } } }"""
CHECK = """mutation($nib: String!) { checkEligibility(request: {nib: $nib,
  product: "JAMKRIDA_KTG_PRODUKTIF", loanAmount: "40000000", tenorMonths: 24,
  checkDate: "2026-01-15", attestation: {maxCollectibility: 1, hasOtherProductiveCredit: false,
  feasibilityApproved: true, onNationalBlacklist: false, hasNpwp: true}}) {
    verdict results { ruleId outcome } } }"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Checks dated 2026-01-15 are made days later: a check may be dated a fortnight back."""
    return Clock(monkeypatch, date(2026, 1, 20))


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    owner = await asyncpg.connect(module_reference_url)
    try:
        await owner.execute(
            "INSERT INTO programmes (id, name, kind, owner_agency_id, jurisdiction)"
            " VALUES ($1, 'Kredit Usaha Rakyat (uji)', 'subsidised_credit', 'AG-DISKOP-62', '62')",
            KUR,
        )
    finally:
        await owner.close()
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _msme(engine: AsyncEngine, nib: str) -> str:
    created = await run(engine, PROVINCE, CREATE_MSME, {"nib": nib})
    assert created.errors is None, created.errors
    return str(created.data["createMsme"]["id"])


async def _r12(engine: AsyncEngine, nib: str) -> tuple[str, str]:
    checked = await run(engine, GUARANTOR, CHECK, {"nib": nib})
    assert checked.errors is None, checked.errors
    decision = checked.data["checkEligibility"]
    (r12,) = [r["outcome"] for r in decision["results"] if r["ruleId"] == "R12"]
    return r12, decision["verdict"]


def _refused(result: Any, field: str) -> None:
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT", error.message
    assert error.extensions["field"] == field
    assert error.message.startswith(f"{field}: ")


def test_the_api_enum_and_the_domain_vocabulary_are_the_same_words() -> None:
    assert {(m.name, m.value) for m in StatusEnum} == {
        (m.name, m.value) for m in ParticipationStatus
    }


@pytest.mark.parametrize("spelled", LOOKALIKES)
async def test_a_status_outside_the_vocabulary_is_refused_naming_its_field(
    engine: AsyncEngine, spelled: str
) -> None:
    nib = f"77800{LOOKALIKES.index(spelled):08d}"
    msme_id = await _msme(engine, nib)
    given = {"programmeId": KUR, "msmeId": msme_id, "role": "debtor"}
    _refused(
        await run(engine, PROVINCE, ADD, {"input": {**given, "status": spelled}}), "input.status"
    )
    added = await run(engine, PROVINCE, ADD, {"input": {**given, "status": "PROPOSED"}})
    assert added.errors is None, added.errors
    participation = added.data["addParticipation"]
    moved = {"id": participation["id"], "version": 1, "changes": {"status": spelled}}
    _refused(await run(engine, REGENCY, CHANGE, moved), "changes.status")
    literal = f'mutation {{ updateParticipation(id: "{participation["id"]}", version: 1,'
    literal += f' changes: {{status: "{spelled}"}}) {{ status }} }}'
    _refused(await run(engine, REGENCY, literal), "changes.status")
    read = await run(engine, PROVINCE, READ, {"nib": nib})
    assert read.data["msme"]["participations"] == [{**participation, "status": "PROPOSED"}]


async def test_r12_fails_while_a_subsidised_credit_participation_is_active(
    engine: AsyncEngine,
) -> None:
    """The attack: the regency marks the KUR participation its province recorded "Active" or
    "aktif" so that the guarantor's check passes R12. It can only say ACTIVE, and R12 fails."""
    nib = "7781000000001"
    msme_id = await _msme(engine, nib)
    assert (await _r12(engine, nib))[0] == "PASS"
    given = {"programmeId": KUR, "msmeId": msme_id, "role": "debtor", "status": "VERIFIED"}
    added = (await run(engine, PROVINCE, ADD, {"input": given})).data["addParticipation"]
    assert added["status"] == "VERIFIED"
    assert (await _r12(engine, nib))[0] == "PASS"  # not taking the credit yet
    for spelled in ("Active", "aktif", "activ\u0435"):
        attempt = {"id": added["id"], "version": 1, "changes": {"status": spelled}}
        _refused(await run(engine, REGENCY, CHANGE, attempt), "changes.status")
    made_active = {"id": added["id"], "version": 1, "changes": {"status": "ACTIVE"}}
    changed = await run(engine, REGENCY, CHANGE, made_active)
    assert changed.data["updateParticipation"] == {"status": "ACTIVE", "version": 2}
    assert await _r12(engine, nib) == ("FAIL", "NOT_ELIGIBLE")
    ended = {"id": added["id"], "version": 2, "changes": {"status": "WITHDRAWN"}}
    assert (await run(engine, REGENCY, CHANGE, ended)).errors is None
    assert (await _r12(engine, nib))[0] == "PASS"


async def test_a_participation_added_without_a_status_is_active_and_counts(
    engine: AsyncEngine,
) -> None:
    nib = "7781000000002"
    msme_id = await _msme(engine, nib)
    given = {"programmeId": KUR, "msmeId": msme_id, "role": "debtor"}
    added = await run(engine, PROVINCE, ADD, {"input": given})
    assert added.data["addParticipation"]["status"] == "ACTIVE"
    assert await _r12(engine, nib) == ("FAIL", "NOT_ELIGIBLE")


async def test_the_database_refuses_another_spelling_and_a_second_same_role(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """Behind the API's back too: the CHECK and the uniqueness (one subject column is always
    NULL, so the key holds only with NULLs not distinct) stand in the database."""
    nib = "7781000000003"
    await _msme(engine, nib)
    owner = await asyncpg.connect(module_reference_url)
    try:
        insert = (
            "INSERT INTO participations (programme_id, msme_id, role, status)"
            " SELECT $1, id, 'debtor', $2 FROM msmes WHERE nib = $3"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await owner.execute(insert, KUR, "Active", nib)
        await owner.execute(insert, KUR, "proposed", nib)
        with pytest.raises(asyncpg.UniqueViolationError):
            await owner.execute(insert, KUR, "active", nib)
    finally:
        await owner.close()
