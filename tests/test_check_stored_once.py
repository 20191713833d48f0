"""A check is stored once, and a check whose audit entry cannot be written is refused: the
decision is kept (it was made) but nothing of it goes out unrecorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.driver import Pooled, Row
from db.engine import create_engine
from db.queries import eligibility as eligibility_queries
from db.queries.audit import AuditWriter
from schema.engine import Engine
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.graphql import SCHEMA, principal, request_context
from tests.support.http import Api
from tests.support.statements import recorded_statements
from tests.test_eligibility_api import CHECKED_ON
from tests.test_eligibility_api import FULL_ATTESTATION as ATTESTED

JAMKRIDA = principal(OrgKind.BUMD, "62")
JAMKRIDA_DEMO = "demo-jamkrida-62"  # the demo client, for requests over HTTP
ENGINE = Engine(SCHEMA)
CHECK = """
mutation Check($request: EligibilityRequest!) {
  checkEligibility(request: $request) {
    __typename verdict finalVerdict product rulesetVersion checkDate loanAmount tenorMonths
    coverageAmount estimatedFee subjectKey
    results { ruleId code outcome reason messageId messageEn legalBasis __typename }
  }
}
"""
ALIASED = """
mutation ($nib: String!) {
  decided: checkEligibility(request: {nib: $nib, product: "JAMKRIDA_KTG_PRODUKTIF",
      loanAmount: "50000000", tenorMonths: 24, checkDate: "2026-01-15",
      attestation: {maxCollectibility: 1, feasibilityApproved: true}}) {
    ...Decision
    ... on EligibilityDecision { why: results { outcome } }
  }
}
fragment Decision on EligibilityDecision { verdict amount: coverageAmount }
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Checks dated 2026-01-15 are made days later: a check may be dated a fortnight back."""
    return Clock(monkeypatch, CHECKED_ON)


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _request(subject: dict[str, str], **changes: Any) -> dict[str, Any]:
    return {
        **subject,
        "product": "JAMKRIDA_KTG_PRODUKTIF",
        "loanAmount": "50000000",
        "tenorMonths": 24,
        "checkDate": "2026-01-15",
        "attestation": ATTESTED,
        **changes,
    }


async def _decisions(engine: AsyncEngine, client_id: str) -> int:
    async with engine.connect() as connection:
        query = text("SELECT count(*) FROM eligibility_decisions WHERE client_id = :client")
        return int((await connection.execute(query, {"client": client_id})).scalar_one())


class _LostAudit(AuditWriter):
    async def append(self, **entry: Any) -> None:
        raise ConnectionResetError("the database went away")


@pytest.mark.parametrize("query", [CHECK, ALIASED])
async def test_a_check_is_stored_once(engine: AsyncEngine, query: str) -> None:
    variables = (
        {"nib": "9990000000001"}
        if query is ALIASED
        else {"request": _request({"nib": "9990000000001"})}
    )
    before = await _decisions(engine, JAMKRIDA.client_id)
    context = request_context(engine, JAMKRIDA)
    answer = await ENGINE.answer(context, {"query": query, "variables": variables})
    assert answer is not None
    assert "errors" not in answer, answer
    assert await _decisions(engine, JAMKRIDA.client_id) == before + 1
    assert context.accesses.fields == {"Mutation.checkEligibility": ["eligibility:check"]}


async def test_a_check_whose_audit_fails_is_stored_once_and_refused(engine: AsyncEngine) -> None:
    variables = {"request": _request({"nib": "9990000000001"})}
    before = await _decisions(engine, JAMKRIDA.client_id)
    context = request_context(engine, JAMKRIDA, audit_writer=_LostAudit(engine, bytes(32)))
    answer = await ENGINE.answer(context, {"query": CHECK, "variables": variables})
    assert answer is not None
    assert answer["data"] is None
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert await _decisions(engine, JAMKRIDA.client_id) == before + 1


def test_over_http_a_check_whose_audit_fails_is_withheld_and_says_it_was_applied(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost(self: AuditWriter, **entry: Any) -> None:
        raise ConnectionResetError("the database went away")

    async def decisions() -> int:
        engine = create_engine(demo_url, statement_timeout_ms=10_000, pool_size=1)
        try:
            return await _decisions(engine, JAMKRIDA_DEMO)
        finally:
            await engine.dispose()

    token = api.token(JAMKRIDA_DEMO)
    before = asyncio.run(decisions())
    with monkeypatch.context() as patched:
        patched.setattr(AuditWriter, "append", lost)
        response = api.post(
            {"query": CHECK, "variables": {"request": _request({"nib": "9990000000001"})}}, token
        )
    # The decision is stored but its answer goes out unrecorded: it is withheld. A 503 would
    # have the lender send the check again and store a second decision.
    assert response.status_code == 200
    assert "Retry-After" not in response.headers
    answer = response.json()
    assert answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "applied": True}
    assert "do not send it again" in error["message"]
    assert asyncio.run(decisions()) == before + 1


def test_over_http_a_check_whose_store_lost_its_connection_says_it_may_have_been_applied(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision's INSERT commits as it runs: a connection lost while it runs may have come
    after it was stored. A 503 "retry shortly" would have the lender store a second decision."""
    store = eligibility_queries.store_decision

    async def lost(connection: Pooled, values: dict[str, Any]) -> Row:
        await store(connection, values)
        raise ConnectionResetError("connection lost while the INSERT's answer was sent")

    token = api.token(JAMKRIDA_DEMO)
    with monkeypatch.context() as patched:
        patched.setattr(eligibility_queries, "store_decision", lost)
        response = api.post(
            {"query": CHECK, "variables": {"request": _request({"nib": "9990000000001"})}}, token
        )
    assert response.status_code == 200, response.text
    assert "Retry-After" not in response.headers
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "applied": True}, error
    assert "may have been applied" in error["message"], error


STORED_ANSWER = """
mutation Check($request: EligibilityRequest!) {
  checkEligibility(request: $request) {
    id verdict results { ruleId code outcome reason messageId messageEn legalBasis }
    replay { verdict sameAsStored }
  }
}
"""
READ_BACK = """
query Decision($id: ID!) {
  eligibilityDecision(id: $id) {
    id verdict results { ruleId code outcome reason messageId messageEn legalBasis }
    replay { verdict sameAsStored }
  }
}
"""


def test_a_check_answers_what_it_stored_without_reading_back_the_json_it_sent(api: Api) -> None:
    """The facts and results go into the decision as JSON; reading them back from the INSERT
    cost every check a parse of some 6 kB it already held (and PostgreSQL the text of it), for
    an answer that seldom selects them. The check's answer is the decision as read later."""
    variables = {"request": _request({"nib": "9990000000001"})}
    with recorded_statements() as statements:
        answer = api.graphql(STORED_ANSWER, JAMKRIDA_DEMO, variables)
    assert "errors" not in answer, answer
    (store,) = [sql for sql in statements if "INSERT INTO eligibility_decisions" in sql]
    returning = store.split("RETURNING", 1)[1]
    assert "eligibility_decisions.facts" not in returning
    assert "eligibility_decisions.results" not in returning
    checked = answer["data"]["checkEligibility"]
    assert checked["replay"]["sameAsStored"] is True
    read = api.graphql(READ_BACK, JAMKRIDA_DEMO, {"id": checked["id"]})
    assert "errors" not in read, read
    assert read["data"]["eligibilityDecision"] == checked
