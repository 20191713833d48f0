"""`checkEligibility` answered directly (schema/direct_check.py) equals the executor's answer,
and a check is stored once whichever path answers it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind
from db.engine import create_engine
from db.queries.audit import AuditWriter
from resolvers.context import Context
from schema.direct import DirectAnswers
from schema.errors import coded
from tests.support.graphql import LIMITS, SCHEMA, principal
from tests.support.http import Api
from tests.test_eligibility_api import FULL_ATTESTATION as ATTESTED

JAMKRIDA = principal(OrgKind.BUMD, "62")
JAMKRIDA_DEMO = "demo-jamkrida-62"  # the demo client, for requests over HTTP
DIRECT = DirectAnswers(SCHEMA._schema)
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


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
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


async def _direct(
    engine: AsyncEngine, who: Principal, query: str, variables: dict[str, Any], **context: Any
) -> tuple[dict[str, Any] | None, Context]:
    direct_context = Context(principal=who, engine=engine, limits=LIMITS, **context)
    answer = await DIRECT.answer(direct_context, {"query": query, "variables": variables})
    return (None if answer is None else orjson.loads(orjson.dumps(answer))), direct_context


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (CHECK, {"request": _request({"nib": "9990000000001"})}),
        (
            CHECK,
            {
                "request": _request(
                    {"nib": "9990000000005"},
                    attestation={**ATTESTED, "maxCollectibility": 3},
                    loanAmount="75000000",
                    tenorMonths=36,
                )
            },
        ),
        (
            CHECK,
            {
                "request": _request(
                    {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"},
                    attestation={"maxCollectibility": 1},
                )
            },
        ),
        (ALIASED, {"nib": "9990000000001"}),
    ],
    ids=["eligible", "not eligible", "a cooperative, needs review", "aliases and fragments"],
)
async def test_direct_checks_equal_the_executors(
    engine: AsyncEngine, query: str, variables: dict[str, Any]
) -> None:
    before = await _decisions(engine, JAMKRIDA.client_id)
    direct, direct_context = await _direct(engine, JAMKRIDA, query, variables)
    executor_context = Context(principal=JAMKRIDA, engine=engine, limits=LIMITS)
    executed = await SCHEMA.execute(
        query, variable_values=variables, context_value=executor_context
    )
    assert executed.errors is None
    assert direct == {"data": executed.data}
    assert await _decisions(engine, JAMKRIDA.client_id) == before + 2  # one per path, no more
    assert direct_context.accesses.fields == executor_context.accesses.fields
    assert direct_context.accesses.records == executor_context.accesses.records


@pytest.mark.parametrize(
    ("who", "query", "variables"),
    [
        (JAMKRIDA, CHECK, {"request": _request({"nib": "999"})}),  # BAD_USER_INPUT
        (JAMKRIDA, CHECK, {"request": _request({"nib": "1230000000009"})}),  # NOT_FOUND
        (JAMKRIDA, CHECK, {"request": _request({"nib": "9990000000001"}, checkDate="2099-01-01")}),
        (
            JAMKRIDA,
            CHECK,
            {"request": _request({"nib": "9990000000001"}, attestation={"maxCollectibility": 9})},
        ),
        (principal(OrgKind.PROVINCE, "62"), CHECK, {"request": _request({"nib": "9990000000001"})}),
        (
            JAMKRIDA,
            CHECK.replace("subjectKey", "replay { verdict }"),
            {"request": _request({"nib": "9990000000001"})},
        ),
        (
            JAMKRIDA,
            CHECK.replace("}\n}", "}\n  again: checkEligibility(request: $request) { verdict }\n}"),
            {"request": _request({"nib": "9990000000001"})},
        ),
    ],
    ids=[
        "bad nib",
        "unknown business",
        "future date",
        "attestation out of range",
        "no scope",
        "replay",
        "two checks",
    ],
)
async def test_a_check_that_stores_nothing_goes_to_the_executor(
    engine: AsyncEngine, who: Principal, query: str, variables: dict[str, Any]
) -> None:
    before = await _decisions(engine, who.client_id)
    direct, context = await _direct(engine, who, query, variables)
    assert direct is None
    assert await _decisions(engine, who.client_id) == before
    assert not context.accesses.worth_recording


class _LostAudit(AuditWriter):
    async def append(self, **entry: Any) -> None:
        raise ConnectionResetError("the database went away")


async def test_a_stored_check_is_answered_once_even_when_its_audit_fails(
    engine: AsyncEngine,
) -> None:
    """Falling back would store a second decision: the direct path answers what the executor
    answers when its audit extension fails."""
    variables = {"request": _request({"nib": "9990000000001"})}
    before = await _decisions(engine, JAMKRIDA.client_id)
    lost = _LostAudit(engine)
    direct, _ = await _direct(engine, JAMKRIDA, CHECK, variables, audit_writer=lost)
    executed = await SCHEMA.execute(
        CHECK,
        variable_values=variables,
        context_value=Context(principal=JAMKRIDA, engine=engine, limits=LIMITS, audit_writer=lost),
    )
    assert direct is not None
    assert executed.errors is not None
    # coded as the HTTP layer codes what the executor reports from a failed extension
    assert direct == {"data": None, "errors": [error.formatted for error in coded(executed.errors)]}
    assert direct["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert await _decisions(engine, JAMKRIDA.client_id) == before + 2


def test_over_http_a_check_whose_audit_fails_is_503_and_stored_once(
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
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == [
        "SERVICE_UNAVAILABLE"
    ]
    assert asyncio.run(decisions()) == before + 1
