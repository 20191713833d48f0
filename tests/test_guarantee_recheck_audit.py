"""Recording a guarantee re-reads the business on the register only for a request that would be
recorded, and what that re-reading tells is audited.

`recordGuarantee` applied the rules the register can overturn before the request's own (its
period, its cover, the guarantor's limit), and its refusal named the failing rule and why. A
guarantor could send a request it knew to be refused, an end before the start, for any decision
of its own, and learn each time whether the business was still open, still in its area, or now
held programme credit, with nothing stored and no audit entry. The request is now checked first,
and a refusal by the register is audited as a fresh check would be, naming the person the
decision is about.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.audit_trail import subjects_and_records
from tests.support.clock import Clock
from tests.support.decisions import GUARANTOR, PROVINCE, decided, guarantor_equity
from tests.support.graphql import run

NIK = "6271995204889911"
NIB = "7749900000011"
CLOSE = "mutation RecheckClose($id: ID!) { deactivateMsme(id: $id, version: 1) { version } }"
PROBE = "mutation RecheckProbe($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id } }"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, date(2026, 12, 6))


async def test_a_refused_request_tells_nothing_of_the_register_and_its_rechecks_are_audited(
    engine: AsyncEngine, reference_url: str
) -> None:
    msme_id, decision_id = await decided(engine, NIB, NIK)
    await guarantor_equity(reference_url)
    closed = await run(engine, PROVINCE, CLOSE, {"id": msme_id})
    assert closed.errors is None, closed.errors
    guarantee = {
        "decisionId": decision_id,
        "bank": "Bank Kalteng",
        "startsOn": "2026-12-06",
    }

    backwards = await run(engine, GUARANTOR, PROBE, {"g": {**guarantee, "endsOn": "2026-12-01"}})
    (error,) = backwards.errors
    assert error.extensions["field"] == "guarantee.endsOn"
    assert "R01" not in error.message
    # Nothing of the register, but the decision's standing (eligible, not yet guaranteed): an
    # entry handing the decision out, as every refusal past finding it is.
    assert await subjects_and_records(engine, "RecheckProbe") == [
        ([NIK], {"eligibility_decision": 1})
    ]

    recheck = await run(engine, GUARANTOR, PROBE, {"g": {**guarantee, "endsOn": "2027-12-06"}})
    (error,) = recheck.errors
    assert error.extensions["field"] == "guarantee.decisionId"
    assert "R01 SUBJECT_REGISTERED" in error.message
    assert (
        await subjects_and_records(engine, "RecheckProbe")
        == [([NIK], {"eligibility_decision": 1})] * 2
    )
