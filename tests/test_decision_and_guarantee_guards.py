"""An insider holding the service's database credentials tries to rewrite stored eligibility
decisions and guarantees (migration 0023, db/roles.py): a decision's verdict, facts, results or
dates, a guarantee's terms, a status moved without its history, a second review. Each is
refused by the database itself: for want of a column privilege (42501), or by a trigger the
service role cannot switch off (23514). What `resolveEligibilityReview` and
`changeGuaranteeStatus` write through the API still goes through.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from db.models import GUARANTEE_STATUSES
from domain.guarantees import ACTIVE, TRANSITIONS
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.http import Api
from tests.test_eligibility_api import (
    CHECKED_ON,
    FULL_ATTESTATION,
    ISSUED_BY,
    JAMKRIDA,
    RECORD,
    STATUS,
    _check,
    _decision,
    _guarantee,
    _request,
)
from tests.test_eligibility_registry import _register

REVIEW = """
mutation Resolve($id: ID!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Ir. Contoh Analis",
                           reason: "kelayakan dicek") {
    verdict finalVerdict review { verdict reviewedAt reviewedByClient }
    replay { sameAsStored }
  }
}
"""
CLAIM = """
mutation Claim($id: ID!) {
  changeGuaranteeStatus(guaranteeId: $id, status: CLAIMED, effectiveOn: "2026-10-01") {
    status history { fromStatus toStatus }
  }
}
"""
DECISION_REWRITES = {
    "verdict": "UPDATE eligibility_decisions SET verdict = 'ELIGIBLE' WHERE id = $1",
    "facts and results": (
        "UPDATE eligibility_decisions SET facts = facts, results = results WHERE id = $1"
    ),
    "check date": "UPDATE eligibility_decisions SET check_date = '2026-01-01' WHERE id = $1",
    "coverage": "UPDATE eligibility_decisions SET coverage_amount = 1 WHERE id = $1",
    "review time": "UPDATE eligibility_decisions SET reviewed_at = '2020-01-01' WHERE id = $1",
    "client": "UPDATE eligibility_decisions SET client_id = 'someone-else' WHERE id = $1",
}
GUARANTEE_REWRITES = {
    "amount": "UPDATE guarantees SET amount = amount + 1 WHERE id = $1",
    "coverage": "UPDATE guarantees SET coverage_amount = 1 WHERE id = $1",
    "period": "UPDATE guarantees SET ends_on = ends_on + 1 WHERE id = $1",
    "guarantor": "UPDATE guarantees SET guarantor_client_id = 'someone-else' WHERE id = $1",
    "a history row": "UPDATE guarantee_status_changes SET to_status = 'active'"
    " WHERE guarantee_id = $1",
    "a history row's time": "INSERT INTO guarantee_status_changes (guarantee_id, from_status,"
    " to_status, effective_on, changed_by, changed_at) SELECT id, status, status, starts_on,"
    " guarantor_client_id, '2020-01-01' FROM guarantees WHERE id = $1",
    "a guarantee recorded in default": "INSERT INTO guarantees (decision_id, guarantor_client_id,"
    " msme_id, province_code, regency_code, bank, amount, coverage_amount, starts_on, ends_on,"
    " status) SELECT gen_random_uuid(), 'x', msme_id, province_code, regency_code, bank, amount,"
    " coverage_amount, starts_on, ends_on, 'defaulted' FROM guarantees WHERE id = $1",
}


@dataclass(frozen=True)
class Stored:
    eligible: str
    """An ELIGIBLE decision, guaranteed."""
    guarantee: str
    """Its guarantee, which only the insider's (refused) attempts touch."""
    needs_review: str
    """A NEEDS_REVIEW decision, not yet reviewed."""


@pytest.fixture(scope="module")
def stored(api: Api) -> Stored:
    """Checked and guaranteed on the scenario's day, as the project clock says."""
    with pytest.MonkeyPatch.context() as patch:
        Clock(patch, CHECKED_ON)
        eligible = _decision(
            _check(api, _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION))
        )
        review = _request(
            {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"},
            100_000_000,
            36,
            maxCollectibility=1,
        )
        needs_review = _decision(_check(api, review))
        recorded = api.graphql(RECORD, JAMKRIDA, _guarantee(eligible["id"]))
    assert "errors" not in recorded, recorded
    assert needs_review["verdict"] == "NEEDS_REVIEW"
    return Stored(eligible["id"], recorded["data"]["recordGuarantee"]["id"], needs_review["id"])


def _as_service(url: str, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> str | None:
    """Run `statements` in one transaction as the service role: the SQLSTATE that refused them,
    at any statement or at commit, or None when they were committed."""

    async def run() -> str | None:
        connection = await asyncpg.connect(as_service(url))
        try:
            async with connection.transaction():
                for statement, arguments in statements:
                    await connection.execute(statement, *arguments)
        except asyncpg.PostgresError as refused:
            return str(refused.sqlstate)
        finally:
            await connection.close()
        return None

    return asyncio.run(run())


def _row(url: str, query: str, *arguments: Any) -> asyncpg.Record:
    async def fetch() -> asyncpg.Record:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchrow(query, *arguments)
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _status_and_history(url: str, guarantee: str) -> tuple[str, list[str]]:
    row = _row(
        url,
        "SELECT status, ARRAY(SELECT to_status FROM guarantee_status_changes"
        " WHERE guarantee_id = g.id ORDER BY id) AS history FROM guarantees g WHERE id = $1",
        uuid.UUID(guarantee),
    )
    return row["status"], list(row["history"])


@pytest.mark.parametrize("statement", DECISION_REWRITES.values(), ids=DECISION_REWRITES.keys())
def test_the_service_role_cannot_rewrite_a_stored_decision(
    stored: Stored, demo_url: str, statement: str
) -> None:
    for decision in (stored.eligible, stored.needs_review):
        assert _as_service(demo_url, [(statement, (uuid.UUID(decision),))]) == "42501"


@pytest.mark.parametrize("statement", GUARANTEE_REWRITES.values(), ids=GUARANTEE_REWRITES.keys())
def test_the_service_role_cannot_rewrite_a_guarantee_or_its_history(
    stored: Stored, demo_url: str, statement: str
) -> None:
    assert _as_service(demo_url, [(statement, (uuid.UUID(stored.guarantee),))]) == "42501"


def test_the_service_role_cannot_insert_a_decision_already_reviewed(
    stored: Stored, demo_url: str
) -> None:
    copy = (
        "INSERT INTO eligibility_decisions (client_id, organisation, msme_id, cooperative_id,"
        " subject_key, province_code, regency_code, loan_amount, tenor_months, product,"
        " ruleset_version, check_date, facts, verdict, results, coverage_amount, estimated_fee,"
        " {extra}) SELECT client_id, organisation, msme_id, cooperative_id, subject_key,"
        " province_code, regency_code, loan_amount, tenor_months, product, ruleset_version,"
        " check_date, facts, verdict, results, coverage_amount, estimated_fee, {values}"
        " FROM eligibility_decisions WHERE id = $1"
    )
    reviewed = copy.format(
        extra="reviewed_verdict, reviewer, review_reason, reviewed_by_client, reviewed_at",
        values="'ELIGIBLE', 'x', 'x', client_id, now()",
    )
    backdated = copy.format(extra="decided_at", values="'2020-01-01'")
    for statement in (reviewed, backdated):
        assert _as_service(demo_url, [(statement, (uuid.UUID(stored.needs_review),))]) == "42501"


STATUS_TO = "UPDATE guarantees SET status = $2 WHERE id = $1"
CHANGE = (
    "INSERT INTO guarantee_status_changes (guarantee_id, from_status, to_status, effective_on,"
    " changed_by) VALUES ($1, $2, $3, '2026-10-01', 'demo-jamkrida-62')"
)


def test_a_guarantee_status_moves_only_with_its_history(stored: Stored, demo_url: str) -> None:
    """Defaulted (R13 then refuses the business) or back to active (clearing it): refused at
    commit without a matching row of history, however the insider words it."""
    guarantee = uuid.UUID(stored.guarantee)
    before = _status_and_history(demo_url, stored.guarantee)
    assert before == ("active", ["active"])
    attempts: dict[str, list[tuple[str, tuple[Any, ...]]]] = {
        "no history": [(STATUS_TO, (guarantee, "defaulted"))],
        "history to another status": [
            (STATUS_TO, (guarantee, "defaulted")),
            (CHANGE, (guarantee, "active", "claimed")),
        ],
        "history from a status it never had": [
            (STATUS_TO, (guarantee, "defaulted")),
            (CHANGE, (guarantee, "claimed", "defaulted")),
        ],
        "history alone": [(CHANGE, (guarantee, "active", "defaulted"))],
        "checked at once, before the history": [
            ("SET CONSTRAINTS ALL IMMEDIATE", ()),
            (STATUS_TO, (guarantee, "defaulted")),
            (CHANGE, (guarantee, "active", "defaulted")),
        ],
    }
    for name, statements in attempts.items():
        assert _as_service(demo_url, statements) == "23514", name
        assert _status_and_history(demo_url, stored.guarantee) == before, name
    # A history row written first, in a transaction of its own, licenses nothing later.
    assert _as_service(demo_url, attempts["history alone"]) == "23514"
    assert _as_service(demo_url, attempts["no history"]) == "23514"
    assert _status_and_history(demo_url, stored.guarantee) == before


def test_a_decision_is_reviewed_once_and_only_if_it_needs_review(
    api: Api, stored: Stored, demo_url: str
) -> None:
    review = (
        "UPDATE eligibility_decisions SET reviewed_verdict = 'NOT_ELIGIBLE', reviewer = 'x',"
        " review_reason = 'x', reviewed_by_client = client_id WHERE id = $1"
    )
    # A decision the rules decided needs no person to overturn it.
    assert _as_service(demo_url, [(review, (uuid.UUID(stored.eligible),))]) == "23514"
    half = "UPDATE eligibility_decisions SET reviewed_verdict = 'ELIGIBLE' WHERE id = $1"
    other = "UPDATE eligibility_decisions SET reviewed_verdict = 'ELIGIBLE', reviewer = 'x',"
    other += " review_reason = 'x', reviewed_by_client = 'someone-else' WHERE id = $1"
    for incomplete in (half, other):
        assert _as_service(demo_url, [(incomplete, (uuid.UUID(stored.needs_review),))]) == "23514"

    started = datetime.now(UTC) - timedelta(seconds=5)
    resolved = api.graphql(REVIEW, JAMKRIDA, {"id": stored.needs_review})
    assert "errors" not in resolved, resolved
    answer = resolved["data"]["resolveEligibilityReview"]
    assert (answer["verdict"], answer["finalVerdict"]) == ("NEEDS_REVIEW", "ELIGIBLE")
    assert answer["review"]["reviewedByClient"] == JAMKRIDA
    assert answer["replay"] == {"sameAsStored": True}
    assert datetime.fromisoformat(answer["review"]["reviewedAt"]) >= started

    # Reviewed: a second review, the insider's, is refused and the first stands.
    assert _as_service(demo_url, [(review, (uuid.UUID(stored.needs_review),))]) == "23514"
    kept = _row(
        demo_url,
        "SELECT reviewed_verdict, reviewer FROM eligibility_decisions WHERE id = $1",
        uuid.UUID(stored.needs_review),
    )
    assert tuple(kept) == ("ELIGIBLE", "Ir. Contoh Analis")


def test_the_api_still_records_guarantees_and_moves_their_status(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    clock = Clock(monkeypatch, CHECKED_ON)
    decision = _decision(_check(api, request))
    recorded = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
    assert "errors" not in recorded, recorded
    guarantee = recorded["data"]["recordGuarantee"]["id"]
    clock.day = ISSUED_BY
    claimed = api.graphql(CLAIM, JAMKRIDA, {"id": guarantee})
    assert "errors" not in claimed, claimed
    assert claimed["data"]["changeGuaranteeStatus"] == {
        "status": "CLAIMED",
        "history": [
            {"fromStatus": None, "toStatus": "ACTIVE"},
            {"fromStatus": "ACTIVE", "toStatus": "CLAIMED"},
        ],
    }
    assert _status_and_history(demo_url, guarantee) == ("claimed", ["active", "claimed"])


def _recorded(api: Api, monkeypatch: pytest.MonkeyPatch, nib: str = "9990000000001") -> str:
    """A guarantee of its own, recorded through the API on the scenario's day (2026-01-20)."""
    Clock(monkeypatch, CHECKED_ON)
    request = _request({"nib": nib}, 50_000_000, 24, **FULL_ATTESTATION)
    recorded = api.graphql(RECORD, JAMKRIDA, _guarantee(_decision(_check(api, request))["id"]))
    assert "errors" not in recorded, recorded
    guarantee: str = recorded["data"]["recordGuarantee"]["id"]
    return guarantee


DATED_CHANGE = (
    "INSERT INTO guarantee_status_changes (guarantee_id, from_status, to_status, effective_on,"
    " changed_by) VALUES ($1, $2, $3, $4, 'demo-jamkrida-62')"
)


def test_the_service_role_cannot_date_a_status_change_back(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insider's history runs forward as the API's does (migration 0039): no change takes
    effect before the guarantee started, nor before a change recorded before it."""
    guarantee = uuid.UUID(_recorded(api, monkeypatch))
    claimed_on, started = date(2026, 10, 1), date(2026, 1, 20)

    def moves(*steps: tuple[str, str, date]) -> list[tuple[str, tuple[Any, ...]]]:
        return [
            statement
            for old, new, on in steps
            for statement in (
                (STATUS_TO, (guarantee, new)),
                (DATED_CHANGE, (guarantee, old, new, on)),
            )
        ]

    before_start = moves(("active", "claimed", started - timedelta(days=1)))
    assert _as_service(demo_url, before_start) == "23514"
    backwards = moves(
        ("active", "claimed", claimed_on), ("claimed", "active", claimed_on - timedelta(days=1))
    )
    assert _as_service(demo_url, backwards) == "23514"
    assert _status_and_history(demo_url, str(guarantee)) == ("active", ["active"])
    # The same day as the latest change is forward enough.
    assert _as_service(demo_url, moves(("active", "claimed", started))) is None
    assert _as_service(demo_url, moves(("claimed", "active", started))) is None
    assert _status_and_history(demo_url, str(guarantee)) == (
        "active",
        ["active", "claimed", "active"],
    )


def test_the_service_role_cannot_undo_a_final_status(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defaulted (R13 then fails the business for its guarantor) or paid off, a guarantee stays
    so: the insider's row of history out of it, though it starts where the last one ended, is
    refused at commit (migration 0039), as is a move changeGuaranteeStatus never makes."""
    for final, nib in (("DEFAULTED", "7794700000201"), ("PAID_OFF", "7794700000202")):
        # A business of its own: a default fails R13 for every later check of it.
        _register(api, nib, capital="50000000", annualTurnover="240000000")
        guarantee = _recorded(api, monkeypatch, nib)
        variables = {"id": guarantee, "status": final, "on": CHECKED_ON.isoformat()}
        answer = api.graphql(STATUS, JAMKRIDA, variables)
        assert answer["data"]["changeGuaranteeStatus"]["status"] == final, answer
        ended = (final.lower(), ["active", final.lower()])
        for undone in ("active", "claimed"):
            undo = [
                (STATUS_TO, (uuid.UUID(guarantee), undone)),
                (CHANGE, (uuid.UUID(guarantee), final.lower(), undone)),
            ]
            assert _as_service(demo_url, undo) == "23514", (final, undone)
            assert _status_and_history(demo_url, guarantee) == ended
    guarantee = _recorded(api, monkeypatch)
    in_place = [(CHANGE, (uuid.UUID(guarantee), "active", "active"))]
    assert _as_service(demo_url, in_place) == "23514"
    assert _status_and_history(demo_url, guarantee) == ("active", ["active"])


def test_the_database_allows_the_moves_the_domain_allows(demo_url: str) -> None:
    """One set of moves: the trigger's (`guarantee_status_may_follow`, migration 0039) is the
    domain's TRANSITIONS, and a first change is to the status a guarantee is recorded in."""
    assert set(TRANSITIONS) == set(GUARANTEE_STATUSES)
    for old in (None, *TRANSITIONS):
        for new in TRANSITIONS:
            expected = new == ACTIVE if old is None else new in TRANSITIONS[old]
            allowed = _row(demo_url, "SELECT guarantee_status_may_follow($1, $2)", old, new)
            assert allowed[0] is expected, (old, new)
