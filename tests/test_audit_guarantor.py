"""What a guarantor is handed is audited as every other read and write is.

A decision, read back (with its replay) or reviewed, and a guarantee recorded on it or changed,
wrote no audit entry, while `checkEligibility` and `guaranteeChanges` did. Each now records what
it returned; and a decision about an MSME, whose owner is a natural person, names that owner's
NIK as its data subject, so that `personalDataAccess` lists the guarantor among those who
received data about them. Run over HTTP as PT Jamkrida Kalteng's demo client.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from tests.support.clock import Clock
from tests.support.databases import run
from tests.support.http import Api

JAMKRIDA = "demo-jamkrida-62"
CUSTODIAN = "demo-walidata"
PRODUCT = "JAMKRIDA_KTG_PRODUKTIF"
SRI = "6271995204880001"
"""The owner of Keripik Kelakai Contoh (NIB 9990000000001), a sole proprietor in Palangka Raya."""
CHECKED_ON = "2026-01-20"
UNREVIEWED = {  # all but the collectibility, so the decision waits for a person's review
    "hasOtherProductiveCredit": False,
    "feasibilityApproved": True,
    "onNationalBlacklist": False,
    "hasNpwp": True,
}

CHECK = """
mutation GuarantorAuditCheck($request: EligibilityRequest!) {
  checkEligibility(request: $request) { id verdict }
}
"""
DECISION = """
query GuarantorAuditDecision($id: ID!) {
  eligibilityDecision(id: $id) { id verdict replay { verdict sameAsStored } }
}
"""
REVIEW = """
mutation GuarantorAuditReview($id: ID!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Ir. Contoh Analis",
    reason: "collectibility 1 confirmed with the bank") { finalVerdict }
}
"""
RECORD = """
mutation GuarantorAuditRecord($guarantee: GuaranteeInput!) {
  recordGuarantee(guarantee: $guarantee) { id status }
}
"""
STATUS = """
mutation GuarantorAuditStatus($id: ID!) {
  changeGuaranteeStatus(guaranteeId: $id, status: CLAIMED, effectiveOn: "2026-01-20") { status }
}
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, date.fromisoformat(CHECKED_ON))


def _answer(api: Api, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = api.graphql(document, JAMKRIDA, variables)
    assert "errors" not in answer, answer
    (data,) = answer["data"].values()
    assert isinstance(data, dict)
    return data


def _entry(demo_url: str, operation: str) -> tuple[dict[str, Any], list[str]]:
    """The guarantor's latest audit entry for `operation`: its records and data subjects."""
    (row,) = run(
        demo_url,
        "SELECT entry::text AS entry, subjects FROM audit_log"
        " WHERE client_id = $1 AND entry ->> 'operation' = $2 ORDER BY seq DESC LIMIT 1",
        JAMKRIDA,
        operation,
    )
    return json.loads(row["entry"])["records"], list(row["subjects"])


def _request(subject: dict[str, str]) -> dict[str, Any]:
    return {
        "request": {
            **subject,
            "product": PRODUCT,
            "loanAmount": "50000000",
            "tenorMonths": 24,
            "attestation": UNREVIEWED,
        }
    }


def test_every_decision_and_guarantee_handed_out_is_audited_naming_the_owner(
    api: Api, demo_url: str
) -> None:
    checked = _answer(api, CHECK, _request({"nib": "9990000000001"}))
    assert checked["verdict"] == "NEEDS_REVIEW"
    assert _entry(demo_url, "GuarantorAuditCheck") == ({"eligibility_decision": 1}, [SRI])

    read = _answer(api, DECISION, {"id": checked["id"]})
    assert read["replay"] == {"verdict": "NEEDS_REVIEW", "sameAsStored": True}
    assert _entry(demo_url, "GuarantorAuditDecision") == ({"eligibility_decision": 1}, [SRI])

    assert _answer(api, REVIEW, {"id": checked["id"]})["finalVerdict"] == "ELIGIBLE"
    assert _entry(demo_url, "GuarantorAuditReview") == ({"eligibility_decision": 1}, [SRI])

    guarantee = {"decisionId": checked["id"], "bank": "Bank Kalteng"}
    guarantee |= {"startsOn": CHECKED_ON, "endsOn": "2028-01-20"}
    recorded = _answer(api, RECORD, {"guarantee": guarantee})
    assert _entry(demo_url, "GuarantorAuditRecord") == ({"guarantee": 1}, [SRI])

    assert _answer(api, STATUS, {"id": recorded["id"]})["status"] == "CLAIMED"
    assert _entry(demo_url, "GuarantorAuditStatus") == ({"guarantee": 1}, [SRI])
    feed = api.graphql(
        "query GuarantorAuditFeed { guaranteeChanges { entries { id record } } }", JAMKRIDA
    )
    assert recorded["id"] in {entry["id"] for entry in feed["data"]["guaranteeChanges"]["entries"]}
    records, subjects = _entry(demo_url, "GuarantorAuditFeed")
    assert records["guarantee"] >= 1
    assert SRI in subjects

    # The custodian, asked who received data about her, names the guarantor.
    who = api.graphql(f'{{ personalDataAccess(nik: "{SRI}") {{ clientId }} }}', CUSTODIAN)
    assert JAMKRIDA in {access["clientId"] for access in who["data"]["personalDataAccess"]}


def test_a_decision_about_a_cooperative_names_no_one(api: Api, demo_url: str) -> None:
    """A cooperative is a legal entity: its decision is a record handed out, about no person."""
    checked = _answer(api, CHECK, _request({"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"}))
    assert _entry(demo_url, "GuarantorAuditCheck") == ({"eligibility_decision": 1}, [])
    _answer(api, DECISION, {"id": checked["id"]})
    assert _entry(demo_url, "GuarantorAuditDecision") == ({"eligibility_decision": 1}, [])
