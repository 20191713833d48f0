"""Credit-guarantee eligibility through HTTP, as PT Jamkrida Kalteng's demo client uses it."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from domain.identifiers import established_by
from tests.support.cli import sinergi
from tests.support.clock import Clock
from tests.support.demo_data import release_figures
from tests.support.http import Api

JAMKRIDA = "demo-jamkrida-62"
PRODUCT = "JAMKRIDA_KTG_PRODUKTIF"
SCENARIO_DATE = "2026-01-15"
CHECKED_ON = date(2026, 1, 20)
"""The day the scenario's checks are made, a few days after the date they are for, and its
guarantees issued and recorded: a decision is guaranteed within a fortnight of its check date."""
ISSUED_BY = date(2026, 10, 31)
"""By then the scenario's guarantees have moved on (one defaulted on 1 October), and the
province has reported its realisations (on the 20th)."""
LATER_RULESETS = Path(__file__).parent / "domain" / "rulesets"
FULL_ATTESTATION = {
    "maxCollectibility": 1,
    "hasOtherProductiveCredit": False,
    "feasibilityApproved": True,
    "onNationalBlacklist": False,
    "hasNpwp": True,
}

CHECK = """
mutation Check($request: EligibilityRequest!) {
  checkEligibility(request: $request) {
    id verdict finalVerdict product rulesetVersion checkDate coverageAmount estimatedFee
    results { ruleId code outcome reason messageId messageEn }
  }
}
"""
DECISION = """
query Decision($id: ID!) {
  eligibilityDecision(id: $id) { id verdict rulesetVersion replay { verdict sameAsStored } }
}
"""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, CHECKED_ON)


def _request(subject: dict[str, str], amount: int, tenor: int, **attested: Any) -> dict[str, Any]:
    return {
        **subject,
        "product": PRODUCT,
        "loanAmount": str(amount),
        "tenorMonths": tenor,
        "checkDate": attested.pop("checkDate", SCENARIO_DATE),
        "attestation": attested,
    }


def _check(api: Api, request: dict[str, Any], client_id: str = JAMKRIDA) -> dict[str, Any]:
    return api.graphql(CHECK, client_id, {"request": request})


def _decision(answer: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in answer, answer
    decision: dict[str, Any] = answer["data"]["checkEligibility"]
    return decision


def _rules(decision: dict[str, Any], outcome: str) -> set[str]:
    return {result["ruleId"] for result in decision["results"] if result["outcome"] == outcome}


def _cli(url: str, *argv: str) -> tuple[int, str]:
    code, out, _ = sinergi(url, *argv)
    return code, out


def test_e01_a_micro_business_in_kalteng_is_eligible_with_70_percent_cover(api: Api) -> None:
    request = _request(
        {"nib": "9990000000001"},
        50_000_000,
        24,
        maxCollectibility=1,
        hasOtherProductiveCredit=False,
        feasibilityApproved=True,
        onNationalBlacklist=False,
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "ELIGIBLE"
    assert decision["coverageAmount"] == "35000000"
    assert decision["estimatedFee"] is None
    assert (decision["product"], decision["rulesetVersion"]) == (PRODUCT, "2026.1")
    assert [result["ruleId"] for result in decision["results"]] == [
        f"R{number:02}" for number in range(1, 14)
    ]
    assert all(result["messageId"] and result["messageEn"] for result in decision["results"])


def test_a_first_time_borrower_slik_shows_no_facility_for_is_eligible(api: Api) -> None:
    """E-01's business, with no credit facility in SLIK and so no collectibility to attest: the
    lender says so, R06 passes, and the stored decision replays as made."""
    first_time = {**FULL_ATTESTATION, "hasExistingCredit": False}
    del first_time["maxCollectibility"]
    decision = _decision(
        _check(api, _request({"nib": "9990000000001"}, 50_000_000, 24, **first_time))
    )
    assert decision["verdict"] == "ELIGIBLE"
    (r06,) = [result for result in decision["results"] if result["ruleId"] == "R06"]
    assert (r06["outcome"], r06["reason"]) == ("PASS", "no_existing_credit")
    assert "no existing credit facility" in r06["messageEn"]
    replayed = api.graphql(DECISION, JAMKRIDA, {"id": decision["id"]})
    assert replayed["data"]["eligibilityDecision"]["replay"] == {
        "verdict": "ELIGIBLE",
        "sameAsStored": True,
    }


def test_e02_other_credit_and_collectibility_3_make_it_not_eligible(api: Api) -> None:
    request = _request(
        {"nib": "9990000000005"},
        75_000_000,
        36,
        maxCollectibility=3,
        hasOtherProductiveCredit=True,
        feasibilityApproved=True,
        onNationalBlacklist=False,
        hasNpwp=True,
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "NOT_ELIGIBLE"
    assert _rules(decision, "FAIL") == {"R05", "R06"}


def test_e04_unattested_feasibility_alone_needs_review(api: Api) -> None:
    """K-001 with everything attested but feasibility: its legal-entity number dates it (R03)."""
    attested = {
        key: value for key, value in FULL_ATTESTATION.items() if key != "feasibilityApproved"
    }
    request = _request(
        {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"}, 400_000_000, 36, **attested
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "NEEDS_REVIEW"
    assert _rules(decision, "UNKNOWN") == {"R04"}
    assert _rules(decision, "FAIL") == set()
    assert {"R03", "R11"} <= _rules(decision, "PASS")


def test_e05_an_inactive_savings_cooperative_is_not_eligible(api: Api) -> None:
    request = _request(
        {"legalEntityNo": "AHU-9990002.AH.01.26.TAHUN 2020"}, 100_000_000, 24, **FULL_ATTESTATION
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "NOT_ELIGIBLE"
    assert _rules(decision, "FAIL") == {"R11"}
    assert "R03" in _rules(decision, "PASS")
    (r11,) = [result for result in decision["results"] if result["ruleId"] == "R11"]
    assert r11["reason"] == "not_active"


def test_the_reasons_in_force_from_6_december_2026_name_no_value_of_the_record(
    api: Api, clock: Clock
) -> None:
    """Under 2026.4 R02 told the guarantor the business's scale ("The business scale (micro)
    is one the product guarantees…"), for a sole proprietor a band of the owner's sales; from
    2026.5 the reasons name the rule set's thresholds, not the record's values."""
    clock.day = date(2026, 12, 6)
    subject = {"nib": "9990000000001"}
    request = _request(subject, 50_000_000, 24, **FULL_ATTESTATION, checkDate="2026-12-06")
    decision = _decision(_check(api, request))
    assert (decision["verdict"], decision["rulesetVersion"]) == ("ELIGIBLE", "2026.5")
    reasons = {result["ruleId"]: result for result in decision["results"]}
    assert reasons["R02"]["messageEn"] == (
        "The business scale is one the product guarantees (micro, small, medium)."
    )
    assert reasons["R02"]["messageId"] == (
        "Skala usaha termasuk yang dapat dijamin (micro, small, medium)."
    )
    assert reasons["R10"]["messageEn"] == (
        "The business is located in the guarantor's area (province 62)."
    )
    inactive = _request(
        {"legalEntityNo": "AHU-9990002.AH.01.26.TAHUN 2020"},
        100_000_000,
        24,
        **FULL_ATTESTATION,
        checkDate="2026-12-06",
    )
    r11 = next(r for r in _decision(_check(api, inactive))["results"] if r["ruleId"] == "R11")
    assert (r11["reason"], r11["messageEn"]) == ("not_active", "The cooperative is not active.")


def test_a_kalbar_business_is_not_found_exactly_like_an_unknown_nib(api: Api) -> None:
    kalbar = _check(api, _request({"nib": "9990000000003"}, 50_000_000, 24))
    unknown = _check(api, _request({"nib": "9990000009999"}, 50_000_000, 24))
    assert kalbar == unknown
    assert kalbar["data"] == {"checkEligibility": None}
    (error,) = kalbar["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"


def test_the_guarantor_sees_no_record_field(api: Api) -> None:
    answer = api.graphql(
        '{ msme(nib: "9990000000001") { name } msmes { totalCount } '
        'cooperative(legalEntityNo: "AHU-9990001.AH.01.26.TAHUN 2019") { name } '
        "cooperatives { totalCount } }",
        JAMKRIDA,
    )
    assert answer["data"] is None or all(value is None for value in answer["data"].values())
    assert sorted(error["path"][0] for error in answer["errors"]) == [
        "cooperative",
        "cooperatives",
        "msme",
        "msmes",
    ]
    assert {error["extensions"]["code"] for error in answer["errors"]} == {"FORBIDDEN"}


def test_a_province_may_not_ask_for_decisions(api: Api) -> None:
    answer = _check(api, _request({"nib": "9990000000001"}, 50_000_000, 24), "demo-province-62")
    assert answer["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "requiredScopes": ["eligibility:check"],
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nib": "12345"}, "request.nib"),
        ({"nib": None}, "request.nib"),
        ({"product": "NO_SUCH_PRODUCT"}, "request.product"),
        ({"tenorMonths": 0}, "request.tenorMonths"),
        ({"tenorMonths": 40_000}, "request.tenorMonths"),  # past its column: was INTERNAL
        ({"checkDate": "2999-01-01"}, "request.checkDate"),
        ({"attestation": {"maxCollectibility": 6}}, "request.attestation.maxCollectibility"),
    ],
)
def test_bad_requests_name_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    request = {**_request({"nib": "9990000000001"}, 50_000_000, 24), **change}
    answer = _check(api, request)
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(field)


@pytest.mark.parametrize(
    "contradiction",
    [{"maxCollectibility": 1}, {"hasOtherProductiveCredit": True}],
    ids=["a collectibility", "other productive credit"],
)
def test_no_existing_credit_contradicted_by_the_attestation_is_refused_naming_it(
    api: Api, contradiction: dict[str, Any]
) -> None:
    """SLIK showing no facility leaves no collectibility and no other productive credit."""
    attested = {**FULL_ATTESTATION, "maxCollectibility": None, "hasExistingCredit": False}
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **{**attested, **contradiction})
    answer = _check(api, request)
    assert answer["data"] == {"checkEligibility": None}
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "request.attestation.hasExistingCredit"
    assert "contradicts" in error["message"]


BAD_TERMS: dict[str, tuple[dict[str, Any], str]] = {
    # case -> (change to a good request, the field named)
    "a product without rules": ({"product": "NOPE"}, "request.product"),
    "a tenor past thirty years": ({"tenorMonths": 361}, "request.tenorMonths"),
    "no tenor": ({"tenorMonths": 0}, "request.tenorMonths"),
    "no loan": ({"loanAmount": "0"}, "request.loanAmount"),
    "a check date to come": ({"checkDate": "2999-01-01"}, "request.checkDate"),
}


@pytest.mark.parametrize("case", list(BAD_TERMS))
def test_a_bad_request_is_refused_alike_whether_or_not_the_business_exists(
    api: Api, case: str
) -> None:
    """The request's terms are checked before the business is looked up: were they checked
    after, a refusal would tell a business in the register (or outside the guarantor's province)
    from an unknown one."""
    change, field = BAD_TERMS[case]
    subjects = [
        {"nib": "9990000000001"},  # in Kalteng
        {"nib": "9990000000003"},  # in Kalbar, outside the guarantor's jurisdiction
        {"nib": "9990000009999"},  # in no register
        {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"},
        {"legalEntityNo": "AHU-9999999.AH.01.26.TAHUN 2019"},
    ]
    answers = [
        _check(api, {**_request(subject, 50_000_000, 24, **FULL_ATTESTATION), **change})
        for subject in subjects
    ]
    (error,) = answers[0]["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", field)
    assert all(answer == answers[0] for answer in answers[1:3])
    assert answers[3] == answers[4]
    assert answers[3]["errors"][0]["extensions"]["field"] == field


def test_every_problem_of_a_request_found_before_any_read_is_listed_at_once(api: Api) -> None:
    """As a record write lists its own: the business's key, the loan, its tenor, the product
    and the attestation, in `extensions.problems`, alike whether or not the business exists. A
    client fixing one at a time sent the request once for each."""
    broken = {
        "product": " ",
        "loanAmount": "0",
        "tenorMonths": 0,
        "attestation": {"maxCollectibility": 6},
    }
    expected = [
        "request.nib",
        "request.product",
        "request.loanAmount",
        "request.tenorMonths",
        "request.attestation.maxCollectibility",
    ]
    answers = [
        _check(api, {**_request(subject, 50_000_000, 24), **broken})
        for subject in ({"nib": "12345"}, {"nib": "9990000000001"}, {"nib": "9990000009999"})
    ]
    (error,) = answers[0]["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "request.nib"
    assert [problem["field"] for problem in error["extensions"]["problems"]] == expected
    for answer in answers[1:]:
        (found,) = answer["errors"]
        assert [problem["field"] for problem in found["extensions"]["problems"]] == expected[1:]


def test_a_check_may_be_dated_at_most_a_fortnight_back(api: Api, clock: Clock) -> None:
    """The facts are today's: dated further back, a decision (and a guarantee on it) would be
    dated before the facts it rests on, even before the record existed. The rules in force
    (2026.5) took effect long before, so the fortnight is the bound."""
    clock.day = date(2027, 1, 20)
    request = _request(
        {"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION, checkDate="2027-01-05"
    )
    (error,) = _check(api, request)["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "request.checkDate",
    )
    assert error["message"] == (
        "request.checkDate: must be at most 14 days before today: from 2027-01-06"
    )
    oldest = _decision(_check(api, {**request, "checkDate": "2027-01-06"}))
    assert (oldest["checkDate"], oldest["rulesetVersion"]) == ("2027-01-06", "2026.5")
    undated = _decision(_check(api, {**request, "checkDate": None}))
    assert undated["checkDate"] == "2027-01-20"


BACKDATING = "AHU-9991001.AH.01.26.TAHUN 2008"
"""A demo cooperative in Kalimantan Tengah, active, its last RAT for book year 2023: 2026.1's
reasons quote its start date and that year, 2026.3's do not. No other test checks it."""


def _quoted(url: str, legal_entity_no: str) -> tuple[str, str]:
    """The values of the record 2026.1's reasons quote: its start date and last RAT book year."""

    async def read() -> tuple[str, str]:
        connection = await asyncpg.connect(url)
        try:
            row = await connection.fetchrow(
                "SELECT established_on, last_rat_book_year FROM cooperatives "
                "WHERE legal_entity_no = $1",
                legal_entity_no,
            )
        finally:
            await connection.close()
        started = row["established_on"] or established_by(legal_entity_no, today=date(2026, 12, 4))
        return started.isoformat(), str(row["last_rat_book_year"])

    return asyncio.run(read())


def _decisions_on(url: str, subject_key: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            query = "SELECT count(*) FROM eligibility_decisions WHERE subject_key = $1"
            return int(await connection.fetchval(query, subject_key))
        finally:
            await connection.close()

    return asyncio.run(count())


def test_a_check_is_not_dated_back_across_a_change_of_rules(
    api: Api, demo_url: str, clock: Clock
) -> None:
    """2026.3 came into force on 4 December 2026. A check made that day but dated the 3rd,
    within the fortnight, ran under 2026.1, whose reasons quote the business's start date and
    last RAT book year, and stored them for `eligibilityDecision` to read again. It is refused,
    naming the first day allowed, alike whether or not the business exists; dated the 4th, the
    check runs under 2026.3."""
    clock.day = date(2026, 12, 4)
    started, rat_year = _quoted(demo_url, BACKDATING)
    subject = {"legalEntityNo": BACKDATING}
    request = _request(subject, 50_000_000, 24, **FULL_ATTESTATION, checkDate="2026-12-03")
    stored = _decisions_on(demo_url, BACKDATING)
    answer = _check(api, request)
    assert answer["data"] == {"checkEligibility": None}
    (error,) = answer["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "request.checkDate",
    )
    assert error["message"] == (
        "request.checkDate: must be on or after the day the rules in force today took effect: "
        "from 2026-12-04"
    )
    assert started not in json.dumps(answer)
    assert rat_year not in json.dumps(answer)
    assert _decisions_on(demo_url, BACKDATING) == stored
    for other in (
        {"legalEntityNo": "AHU-9999999.AH.01.26.TAHUN 2000"},  # in no register
        {"nib": "9990000000001"},  # in Kalteng
        {"nib": "9990000000003"},  # in Kalbar, outside the guarantor's jurisdiction
        {"nib": "9990000009999"},  # in no register
    ):
        refused = _check(api, {**request, "legalEntityNo": None, **other})
        assert refused["errors"][0]["message"] == error["message"], other

    dated = _decision(_check(api, {**request, "checkDate": "2026-12-04"}))
    assert (dated["checkDate"], dated["rulesetVersion"]) == ("2026-12-04", "2026.3")
    messages = json.dumps([(r["messageId"], r["messageEn"]) for r in dated["results"]])
    assert started not in messages
    assert rat_year not in messages
    assert _decisions_on(demo_url, BACKDATING) == stored + 1


def test_a_stored_decision_replays_unchanged_after_the_rules_change(
    api: Api, demo_url: str, clock: Clock
) -> None:
    request = _request(
        {"nib": "9990000000001"},
        40_000_000,
        24,
        checkDate="2026-06-01",
        **{k: v for k, v in FULL_ATTESTATION.items() if k != "hasNpwp"},
    )
    clock.day = date(2026, 6, 1)
    before = _decision(_check(api, request))
    assert (before["verdict"], before["rulesetVersion"]) == ("ELIGIBLE", "2026.1")

    code, output = _cli(demo_url, "rulesets", "load", str(LATER_RULESETS))
    assert code == 0, output
    clock.day = date(2026, 8, 1)
    after = _decision(_check(api, {**request, "checkDate": "2026-08-01"}))
    assert (after["verdict"], after["rulesetVersion"]) == ("NEEDS_REVIEW", "2026.2")
    assert _rules(after, "UNKNOWN") == {"R08"}  # 2026.2 wants an NPWP above Rp25 juta

    replayed = api.graphql(DECISION, JAMKRIDA, {"id": before["id"]})["data"]
    assert replayed["eligibilityDecision"] == {
        "id": before["id"],
        "verdict": "ELIGIBLE",
        "rulesetVersion": "2026.1",
        "replay": {"verdict": "ELIGIBLE", "sameAsStored": True},
    }
    # another guarantor cannot read the decision at all
    code, output = _cli(
        demo_url,
        "clients",
        "create",
        "--name",
        "PT Jamkrida Lain",
        "--org-kind",
        "bumd",
        "--jurisdiction",
        "62",
        "--purpose",
        "testing",
        "--json",
    )
    created = json.loads(output)
    token = api.token_response(created["client_id"], created["client_secret"]).json()
    other = api.post({"query": DECISION, "variables": {"id": before["id"]}}, token["access_token"])
    assert other.json() == {"data": {"eligibilityDecision": None}}


def test_a_changed_ruleset_needs_a_new_version(demo_url: str, tmp_path: Path) -> None:
    shipped = json.loads(next(LATER_RULESETS.glob("*.json")).read_text(encoding="utf-8"))
    shipped["coverage_rate"] = "0.80"
    (tmp_path / "edited.json").write_text(json.dumps(shipped), encoding="utf-8")
    _cli(demo_url, "rulesets", "load", str(LATER_RULESETS))
    code, _, error = sinergi(demo_url, "rulesets", "load", str(tmp_path))
    assert code == 2
    assert "publish the change under a new version" in error


RECORD = """
mutation Record($guarantee: GuaranteeInput!) {
  recordGuarantee(guarantee: $guarantee) {
    id status amount coverageAmount history { fromStatus toStatus effectiveOn changedBy }
  }
}
"""
STATUS = """
mutation Status($id: ID!, $status: GuaranteeStatus!, $on: Date!) {
  changeGuaranteeStatus(guaranteeId: $id, status: $status, effectiveOn: $on, note: "kol 5") {
    status history { toStatus }
  }
}
"""


def _guarantee(decision_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "guarantee": {
            "decisionId": decision_id,
            "bank": "Bank Kalteng",
            "startsOn": "2026-01-20",
            "endsOn": "2028-01-20",
            **extra,
        }
    }


def test_a_defaulted_guarantee_makes_the_next_decision_not_eligible(api: Api) -> None:
    request = _request({"nib": "9990000000002"}, 75_000_000, 24, **FULL_ATTESTATION)
    first = _decision(_check(api, request))
    assert first["verdict"] == "ELIGIBLE"
    earlier = _decision(_check(api, request))  # kept, to be guaranteed after the default

    recorded = api.graphql(RECORD, JAMKRIDA, _guarantee(first["id"]))
    assert "errors" not in recorded, recorded
    guarantee = recorded["data"]["recordGuarantee"]
    assert (guarantee["status"], guarantee["coverageAmount"]) == ("ACTIVE", "52500000")
    again = api.graphql(RECORD, JAMKRIDA, _guarantee(first["id"]))
    (conflict,) = again["errors"]
    assert conflict["extensions"] == {"code": "CONFLICT", "field": "guarantee.decisionId"}
    assert conflict["message"] == "guarantee.decisionId: already guaranteed"

    variables = {"id": guarantee["id"], "status": "ACTIVE", "on": CHECKED_ON.isoformat()}
    (unchanged,) = api.graphql(STATUS, JAMKRIDA, variables)["errors"]
    assert "an active guarantee can become claimed, defaulted, paid_off" in unchanged["message"]

    # Defaulted within the fortnight in which the earlier decision could still be guaranteed.
    variables = {**variables, "status": "DEFAULTED"}
    defaulted = api.graphql(STATUS, JAMKRIDA, variables)["data"]["changeGuaranteeStatus"]
    assert defaulted["history"] == [{"toStatus": "ACTIVE"}, {"toStatus": "DEFAULTED"}]
    final = api.graphql(STATUS, JAMKRIDA, {**variables, "status": "ACTIVE"})
    assert final["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    second = _decision(_check(api, request))
    assert second["verdict"] == "NOT_ELIGIBLE"
    (r13,) = [result for result in second["results"] if result["ruleId"] == "R13"]
    assert (r13["outcome"], r13["reason"]) == ("FAIL", "defaulted")
    # A decision made before the default no longer holds either.
    stale = api.graphql(RECORD, JAMKRIDA, _guarantee(earlier["id"]))
    (error,) = stale["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "guarantee.decisionId",
    )
    assert "R13 NO_GUARANTEE_DEFAULT (defaulted)" in error["message"]


def test_a_guarantee_on_no_decision_of_the_guarantor_names_its_argument(api: Api) -> None:
    """The message said `guarantee.decisionId` and `extensions.field` said `decisionId`: the
    field is the path from the argument, as every other refusal of the mutation names it."""
    unknown = _guarantee("00000000-0000-4000-8000-000000000000")
    answer = api.graphql(RECORD, JAMKRIDA, unknown)
    assert answer["data"] == {"recordGuarantee": None}
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "guarantee.decisionId"}
    assert error["message"] == "guarantee.decisionId: no such decision"


def test_a_guarantee_cannot_start_before_the_check_it_rests_on(api: Api) -> None:
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(_check(api, request))
    assert (decision["verdict"], decision["checkDate"]) == ("ELIGIBLE", SCENARIO_DATE)
    backdated = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"], startsOn="2026-01-14"))
    (error,) = backdated["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "guarantee.startsOn",
    )


def test_a_zero_coverage_is_refused_not_taken_for_the_decisions(api: Api) -> None:
    """0 is a coverage given, and not a positive one: never the decision's full cover instead."""
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(_check(api, request))
    zero = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"], coverageAmount="0"))
    assert zero["data"] == {"recordGuarantee": None}
    (error,) = zero["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "guarantee.coverageAmount",
    )
    assert error["message"] == "guarantee.coverageAmount: must be positive"
    # Nothing was stored: the decision can still be guaranteed.
    assert "errors" not in api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))


def test_a_reviewed_decision_can_be_guaranteed_and_is_reviewed_once(api: Api) -> None:
    request = _request(
        {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"}, 100_000_000, 36, maxCollectibility=1
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "NEEDS_REVIEW"
    refused = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["errors"][0]["message"] == (
        "guarantee.decisionId: the decision is NEEDS_REVIEW, not yet reviewed:"
        " only an eligible decision is guaranteed"
    )

    resolve = """
    mutation Resolve($id: ID!) {
      resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Ir. Contoh Analis",
        reason: "feasibility confirmed with the bank's credit committee") {
        verdict finalVerdict review { verdict reviewer reason reviewedByClient }
      }
    }
    """
    resolved = api.graphql(resolve, JAMKRIDA, {"id": decision["id"]})
    assert resolved["data"]["resolveEligibilityReview"] == {
        "verdict": "NEEDS_REVIEW",
        "finalVerdict": "ELIGIBLE",
        "review": {
            "verdict": "ELIGIBLE",
            "reviewer": "Ir. Contoh Analis",
            "reason": "feasibility confirmed with the bank's credit committee",
            "reviewedByClient": JAMKRIDA,
        },
    }
    twice = api.graphql(resolve, JAMKRIDA, {"id": decision["id"]})
    (conflict,) = twice["errors"]
    assert conflict["extensions"] == {"code": "CONFLICT", "field": "decisionId"}
    assert conflict["message"] == "decisionId: the decision is already reviewed"
    assert "errors" not in api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))


def test_a_decision_not_awaiting_review_is_a_conflict_on_its_argument(api: Api) -> None:
    """Only a NEEDS_REVIEW decision takes a person's verdict; the refusal names the argument
    that chose the decision, as a refusal of any other argument names that one."""
    decision = _decision(
        _check(api, _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION))
    )
    assert decision["verdict"] == "ELIGIBLE"
    review = {"id": decision["id"], "reviewer": "Ir. Contoh Analis", "reason": "dicek"}
    answer = api.graphql(REVIEW, JAMKRIDA, review)
    assert answer["data"] == {"resolveEligibilityReview": None}
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "CONFLICT", "field": "decisionId"}
    assert error["message"] == (
        "decisionId: only a NEEDS_REVIEW decision can be reviewed; this one is ELIGIBLE"
    )


def test_a_decision_reviewed_not_eligible_is_refused_in_its_reviews_verdict(api: Api) -> None:
    """The refusal gives the verdict that stands: the review's, not the NEEDS_REVIEW the rules
    left for it."""
    request = _request(
        {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"}, 100_000_000, 36, maxCollectibility=1
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "NEEDS_REVIEW"
    resolve = """
    mutation Resolve($id: ID!) {
      resolveEligibilityReview(decisionId: $id, verdict: NOT_ELIGIBLE, reviewer: "Ir. Analis",
        reason: "agunan tidak cukup") { finalVerdict }
    }
    """
    resolved = api.graphql(resolve, JAMKRIDA, {"id": decision["id"]})
    assert resolved["data"]["resolveEligibilityReview"] == {"finalVerdict": "NOT_ELIGIBLE"}
    refused = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
    (error,) = refused["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "guarantee.decisionId"}
    assert error["message"] == (
        "guarantee.decisionId: the decision was reviewed NOT_ELIGIBLE:"
        " only an eligible decision is guaranteed"
    )


def test_the_gearing_limit_refuses_a_guarantee_beyond_20_times_equity(
    api: Api, demo_url: str
) -> None:
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(_check(api, request))
    assert _cli(demo_url, "guarantors", "set-equity", JAMKRIDA, "1000000")[0] == 0
    try:
        refused = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("guarantee.coverageAmount: would exceed")
    finally:
        assert _cli(demo_url, "guarantors", "set-equity", JAMKRIDA, "50000000000")[0] == 0
    assert "errors" not in api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))


def _eligible_nib_in(url: str, regency: str) -> str:
    """A demo MSME in `regency` that passes every registry rule, so a decision is ELIGIBLE."""

    async def find() -> str:
        connection = await asyncpg.connect(url)
        try:
            return str(
                await connection.fetchval(
                    "SELECT m.nib FROM msmes m JOIN msme_owners o ON o.msme_id = m.id "
                    "WHERE m.regency_code = $1 AND m.established_on < '2025-01-01' "
                    "AND m.scale <> 'large' ORDER BY m.id LIMIT 1",
                    regency,
                )
            )
        finally:
            await connection.close()

    return asyncio.run(find())


def test_a_lone_guarantee_leaves_no_trace_for_the_province_as_for_a_ministry(
    api: Api, demo_url: str
) -> None:
    """One guarantee in Kabupaten Kotawaringin Timur (62.02), where no other test records one.
    The province reads its businesses but not their guarantees (only the guarantor does): shown
    exactly, the cell would be one business's loan and whether it defaulted. Shown suppressed,
    its key alone said as much: a cell `{62.02, active}` (or `claimed`) beside no other told
    that some borrower there had a guaranteed loan (or defaulted on one), as a programme's cell
    told who took part. So a guarantee table is one of members for them, its cells too few to
    show left out, key and all. The guarantor still sees its own guarantee, exact, apart."""
    request = _request(
        {"nib": _eligible_nib_in(demo_url, "62.02")}, 50_000_000, 24, **FULL_ATTESTATION
    )
    decision = _decision(_check(api, request))
    assert "errors" not in api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
    release_figures(demo_url)  # guarantee figures are read from the release

    query = """{ guaranteeFigures(groupBy: [REGENCY, STATUS], region: "62.02") {
        key { value } suppressed count coverageSum } }"""
    for client in ("demo-province-62", "demo-ministry"):
        assert api.graphql(query, client)["data"]["guaranteeFigures"] == [], client
    own = query.replace("coverageSum", "coverageSum ownCount")
    shown = {
        tuple(part["value"] for part in cell["key"]): cell
        for cell in api.graphql(own, JAMKRIDA)["data"]["guaranteeFigures"]
    }
    assert shown[("62.02", "active")]["ownCount"] == 1
    assert all(cell["suppressed"] for cell in shown.values())


@pytest.fixture
def reported(clock: Clock) -> None:
    clock.day = ISSUED_BY


REPORT = """
mutation Report($report: RealisationInput!) {
  reportRealisation(report: $report) { value source reportedBy }
}
"""


def _report(jurisdiction: str, value: str) -> dict[str, Any]:
    return {
        "report": {
            "indicator": "WIRAUSAHA_BARU",
            "jurisdiction": jurisdiction,
            "year": 2026,
            "value": value,
            "source": "Laporan triwulan III Dinas Koperasi dan UKM Kalteng",
            "reportedOn": "2026-10-20",
        }
    }


@pytest.mark.usefixtures("reported")
def test_a_province_reports_realisations_and_keeps_their_history(api: Api) -> None:
    first = api.graphql(REPORT, "demo-province-62", _report("62", "1500"))
    reported_by = first["data"]["reportRealisation"]["reportedBy"]
    assert reported_by == "Dinas Koperasi dan UKM Provinsi Kalimantan Tengah (demo)"
    api.graphql(REPORT, "demo-province-62", _report("62", "1620"))
    history = api.graphql(
        '{ indicator(code: "WIRAUSAHA_BARU") { targets { jurisdiction { code } year kind '
        "realisations { value } } } }",
        "demo-ministry",
    )["data"]["indicator"]["targets"]
    (target,) = [
        t
        for t in history
        if (t["jurisdiction"]["code"], t["year"], t["kind"]) == ("62", 2026, "target")
    ]
    values = [realisation["value"] for realisation in target["realisations"]]
    assert values[:2] == ["1620", "1500"]  # newest first, nothing overwritten


def test_a_target_answers_a_page_of_its_realisations_as_its_cost_counts_it(api: Api) -> None:
    """Reports are only ever added: a province that appended thousands made every reader of the
    public indicator download all of them, while the cost estimate counted twenty."""
    reports = " ".join(
        f'r{n}: reportRealisation(report: {{indicator: "KOP_PARTISIPASI", jurisdiction: "62", '
        f'year: 2026, value: "{n}", source: "BPS Kalteng"}}) {{ value }}'
        for n in range(25)
    )
    assert "errors" not in api.graphql(f"mutation {{ {reports} }}", "demo-province-62")

    def history(first: str) -> Any:
        answer = api.graphql(
            '{ indicator(code: "KOP_PARTISIPASI") { targets { jurisdiction { code } year '
            f"realisations{first} {{ value }} progress }} }} }}",
            "demo-ministry",
        )
        if "errors" in answer:
            return answer["errors"]
        (target,) = [
            t
            for t in answer["data"]["indicator"]["targets"]
            if (t["jurisdiction"]["code"], t["year"]) == ("62", 2026)
        ]
        return target

    default = history("")
    assert [r["value"] for r in default["realisations"]] == [str(n) for n in range(24, 4, -1)]
    assert default["progress"] == "2.4"  # the latest report (24) against the target (10)
    assert [r["value"] for r in history("(first: 3)")["realisations"]] == ["24", "23", "22"]
    assert len(history("(first: 100)")["realisations"]) >= 25
    (refused,) = history("(first: 101)")
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["message"].startswith("first: must be between 1 and 100")


def test_a_target_s_computed_value_and_progress_are_figures_that_need_aggregates_read(
    api: Api,
) -> None:
    """A ministry token narrowed to targets:read read the live figures from the records through
    a target, which the contract grants only with aggregates:read."""
    query = (
        '{ indicator(code: "UKM_PROPORSI") { targets { jurisdiction { code } year value '
        "computedValue progress } } }"
    )
    full = api.graphql(query, "demo-ministry")
    assert "errors" not in full
    assert any(t["computedValue"] is not None for t in full["data"]["indicator"]["targets"])
    narrowed = api.post({"query": query}, api.token("demo-ministry", "targets:read")).json()
    targets = narrowed["data"]["indicator"]["targets"]
    assert [t["value"] for t in targets] == [
        t["value"] for t in full["data"]["indicator"]["targets"]
    ]
    assert all(t["computedValue"] is None and t["progress"] is None for t in targets)
    refused = {(e["path"][-1], e["extensions"]["code"]) for e in narrowed["errors"]}
    assert refused == {("computedValue", "FORBIDDEN"), ("progress", "FORBIDDEN")}
    assert {tuple(e["extensions"]["requiredScopes"]) for e in narrowed["errors"]} == {
        ("aggregates:read",)
    }


@pytest.mark.usefixtures("reported")
def test_realisations_are_reported_only_inside_the_jurisdiction_and_with_the_scope(
    api: Api,
) -> None:
    outside = api.graphql(REPORT, "demo-province-61", _report("62", "1"))
    assert outside["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    ministry = api.graphql(REPORT, "demo-ministry", _report("62", "1"))
    assert ministry["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "requiredScopes": ["targets:write"],
    }
    bad = api.graphql(
        REPORT,
        "demo-province-62",
        {"report": {**_report("62", "1")["report"], "indicator": "NOPE"}},
    )
    assert bad["errors"][0]["message"].startswith("report.indicator")


BY_JURISDICTION = """
query Reported($code: String!, $jurisdiction: String!, $year: Int!, $first: Int) {
  indicator(code: $code) {
    targets { jurisdiction { code } year }
    realisations(jurisdiction: $jurisdiction, year: $year, first: $first) {
      value source reportedBy
    }
  }
}
"""


def _reported(api: Api, code: str, jurisdiction: str, year: int, first: int | None = None) -> Any:
    variables = {"code": code, "jurisdiction": jurisdiction, "year": year, "first": first}
    return api.graphql(BY_JURISDICTION, "demo-ministry", variables)


@pytest.mark.usefixtures("reported")
def test_a_regency_s_report_without_a_target_is_read_back_by_the_ministry(api: Api) -> None:
    """A regency has no targets (nor does any jurisdiction in production, which loads none):
    its reports were stored, and readable only through a target, by nobody."""
    report = {**_report("62.71", "180")["report"], "indicator": "UMKM_JUMLAH", "year": 2025}
    sent = api.graphql(REPORT, "demo-regency-6271", {"report": report})
    assert "errors" not in sent, sent
    indicator = _reported(api, "UMKM_JUMLAH", "62.71", 2025)["data"]["indicator"]
    assert ("62.71", 2025) not in {
        (t["jurisdiction"]["code"], t["year"]) for t in indicator["targets"]
    }
    assert indicator["realisations"] == [
        {
            "value": "180",
            "source": "Laporan triwulan III Dinas Koperasi dan UKM Kalteng",
            "reportedBy": "Dinas Koperasi dan UKM Kota Palangka Raya (demo)",
        }
    ]


def test_a_seeded_realisation_without_a_target_is_readable(api: Api) -> None:
    """Kalimantan Timur's 5,745 cooperatives of 2021 (sinergi/seed_data/targets.csv) answer no
    target, so no reader saw them."""
    indicator = _reported(api, "KOP_JUMLAH", "64", 2021)["data"]["indicator"]
    assert ("64", 2021) not in {
        (t["jurisdiction"]["code"], t["year"]) for t in indicator["targets"]
    }
    assert indicator["realisations"] == [
        {
            "value": "5745",
            "source": "Disperindagkop UKM Kaltim, reported by Niaga.asia: "
            "https://www.niaga.asia/5050-persen-koperasi-kaltim-masih-aktif/",
            "reportedBy": "seed",
        }
    ]


@pytest.mark.usefixtures("reported")
def test_an_indicator_answers_a_page_of_a_jurisdiction_s_reports_newest_first(api: Api) -> None:
    reports = " ".join(
        f'r{n}: reportRealisation(report: {{indicator: "MIKRO_NAIK_KELAS", '
        f'jurisdiction: "62.71", year: 2026, value: "{n}", source: "Dinas"}}) {{ value }}'
        for n in range(4)
    )
    assert "errors" not in api.graphql(f"mutation {{ {reports} }}", "demo-regency-6271")

    def values(first: int | None) -> list[str]:
        answer = _reported(api, "MIKRO_NAIK_KELAS", "62.71", 2026, first)
        assert "errors" not in answer, answer
        return [r["value"] for r in answer["data"]["indicator"]["realisations"]]

    assert values(None) == ["3", "2", "1", "0"]
    assert values(2) == ["3", "2"]
    (refused,) = _reported(api, "MIKRO_NAIK_KELAS", "62.71", 2026, 101)["errors"]
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["message"].startswith("first: must be between 1 and 100")


@pytest.mark.usefixtures("reported")
@pytest.mark.parametrize(
    ("jurisdiction", "year", "field", "reason"),
    [
        ("62.99", 2025, "jurisdiction", "unknown region code '62.99'"),
        ("Kalteng", 2025, "jurisdiction", 'must be "ID" or a code shaped PP'),
        ("62", 1999, "year", "must be between 2000 and 2026"),
        ("62", 2027, "year", "must be between 2000 and 2026"),
    ],
)
def test_an_indicator_s_realisations_are_asked_for_a_known_region_and_a_reportable_year(
    api: Api, jurisdiction: str, year: int, field: str, reason: str
) -> None:
    answer = _reported(api, "KOP_JUMLAH", jurisdiction, year)
    assert answer["data"] == {"indicator": None}
    (error,) = answer["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", field)
    assert error["message"].startswith(f"{field}: {reason}")


@pytest.mark.usefixtures("reported")
@pytest.mark.parametrize("value", ["1e999999", "1e-999999", "1e131072", "1e-16384"])
def test_a_decimal_the_numeric_column_cannot_hold_is_bad_input_not_internal(
    api: Api, value: str
) -> None:
    """asyncpg refuses these ("exponent is too large/small"): the scalar refuses them first."""
    answer = api.graphql(REPORT, "demo-province-62", _report("62", value))
    (error,) = answer["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "report.value",
    )
    assert error["message"].startswith("report.value: ")
    assert "Decimal must have at most 131072 digits before the point" in error["message"]


@pytest.mark.parametrize("value", ["٤", "１", "1_000", "4٣", "1_0.5"])
def test_a_decimal_is_written_in_ascii_digits_as_a_rupiah_is(
    api: Api, demo_url: str, value: str
) -> None:
    """Decimal read every script's digits and Python's digit grouping: "٤" was stored as 4,
    "１" as 1 and "1_000" as 1000, a figure other than the one the request shows."""
    before = _realisation_count(demo_url)
    answer = api.graphql(REPORT, "demo-province-62", _report("62", value))
    (error,) = answer["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "report.value",
    )
    assert 'Decimal must be a number written as a string, e.g. "1.12"' in error["message"]
    assert _realisation_count(demo_url) == before


def _realisation_count(url: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            return int(await connection.fetchval("SELECT count(*) FROM realisations"))
        finally:
            await connection.close()

    return asyncio.run(count())


REFUSED_REPORTS: dict[str, tuple[dict[str, Any], str, str]] = {
    # case -> (change to a good report, the field named, the start of its reason)
    "a 1.5 MB source": ({"source": "x" * 1_500_000}, "report.source", "must be at most 1000"),
    "a source turned around by U+202E": (
        {"source": "\u202eBPS Kalteng"},
        "report.source",
        "must not contain control",
    ),
    "a qualifier longer than its column": (
        {"qualifier": "more_than_or_equal_to"},
        "report.qualifier",
        "must be at most 20",
    ),
    "a qualifier with a newline": ({"qualifier": "at\nleast"}, "report.qualifier", "must not"),
    # Every targets:read client gets it back, and reads it as one of the two.
    "a qualifier outside more_than, at_least": (
        {"qualifier": "<script>"},
        "report.qualifier",
        "must be one of more_than, at_least",
    ),
    "a negative value": ({"value": "-1500"}, "report.value", "must be between 0 and"),
    "a value beyond Rp1 quadrillion": ({"value": "1e16"}, "report.value", "must be between 0"),
    "a value of 16,383 decimal places": ({"value": "1e-16383"}, "report.value", "must have at"),
    "a share of 250.5 percent": (
        {"indicator": "KOP_PARTISIPASI", "value": "250.5"},
        "report.value",
        "must be between 0 and 100 for an indicator in percent",
    ),
    "a negative share": (
        {"indicator": "RASIO_KEWIRAUSAHAAN", "value": "-0.5"},
        "report.value",
        "must be between 0 and 100",
    ),
    "12.345678 persons": (
        {"value": "12.345678"},
        "report.value",
        "must be a whole number for an indicator in persons",
    ),
    "800.5 enterprises": (
        {"indicator": "MIKRO_NAIK_KELAS", "value": "800.5"},
        "report.value",
        "must be a whole number for an indicator in enterprises",
    ),
    "3,782.1 cooperatives": (
        {"indicator": "KOP_JUMLAH", "value": "3782.1"},
        "report.value",
        "must be a whole number for an indicator in unit",
    ),
    "rupiah with cents": (
        {"indicator": "KOP_PRODUKSI_VOLUME", "value": "222000000000.50"},
        "report.value",
        "must be a whole number for an indicator in IDR",
    ),
    "a kecamatan, where no target is set": (
        {"jurisdiction": "62.71.01"},
        "report.jurisdiction",
        "must be the nation, a province or a regency or city",
    ),
    "a report dated in year 1": (
        {"reportedOn": "0001-01-01"},
        "report.reportedOn",
        "must be a date from 1900-01-01 to",
    ),
    "a report dated before its year began": (
        {"reportedOn": "2025-12-31"},
        "report.reportedOn",
        "is before 2026-01-01: a realisation for 2026 is reported once the year has begun",
    ),
    "a report for next year, dated today by default": (
        {"year": 2027, "reportedOn": None},
        "report.year",
        "must be between 2000 and 2026",
    ),
}


@pytest.mark.usefixtures("reported")
@pytest.mark.parametrize("case", list(REFUSED_REPORTS))
def test_a_realisation_is_checked_as_a_record_write_is(api: Api, demo_url: str, case: str) -> None:
    """One client's report goes to every reader of the indicator: a megabyte of source in a few
    reports made the ministry's whole `indicators` query too large to answer."""
    change, field, reason = REFUSED_REPORTS[case]
    before = _realisation_count(demo_url)
    answer = api.graphql(
        REPORT, "demo-province-62", {"report": {**_report("62", "1500")["report"], **change}}
    )
    assert answer["data"] == {"reportRealisation": None}
    (error,) = answer["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", field)
    assert error["message"].startswith(f"{field}: {reason}")
    assert _realisation_count(demo_url) == before


@pytest.mark.usefixtures("reported")
def test_a_realisation_report_names_every_rule_it_breaks(api: Api, demo_url: str) -> None:
    before = _realisation_count(demo_url)
    report = {
        **_report("62", "-1")["report"],
        "source": "\u202e" + "x" * 2000,
        "qualifier": "x" * 21,
        "reportedOn": "2999-01-01",
    }
    (error,) = api.graphql(REPORT, "demo-province-62", {"report": report})["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [problem["field"] for problem in error["extensions"]["problems"]] == [
        "report.value",
        "report.source",
        "report.qualifier",
        "report.reportedOn",
    ]
    assert _realisation_count(demo_url) == before


@pytest.mark.usefixtures("reported")
def test_an_unknown_jurisdiction_is_named_with_the_reports_other_errors(
    api: Api, demo_url: str
) -> None:
    """It was refused alone, the report's other errors left for the next try."""
    before = _realisation_count(demo_url)
    report = {**_report("62", "-1")["report"], "jurisdiction": "62.99", "qualifier": "lebih"}
    (error,) = api.graphql(REPORT, "demo-province-62", {"report": report})["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "report.jurisdiction: unknown region code '62.99'"
    assert [problem["field"] for problem in error["extensions"]["problems"]] == [
        "report.jurisdiction",
        "report.value",
        "report.qualifier",
    ]
    assert _realisation_count(demo_url) == before


@pytest.mark.usefixtures("reported")
def test_a_realisation_keeps_a_qualifier_and_six_decimal_places(api: Api) -> None:
    report = {
        **_report("62", "12.345678")["report"],
        "indicator": "KOP_PARTISIPASI",
        "qualifier": "  at_least ",
    }
    answer = api.graphql(
        "mutation($report: RealisationInput!) { reportRealisation(report: $report) "
        "{ value qualifier source } }",
        "demo-province-62",
        {"report": report},
    )
    assert answer["data"]["reportRealisation"] == {
        "value": "12.345678",
        "qualifier": "at_least",
        "source": "Laporan triwulan III Dinas Koperasi dan UKM Kalteng",
    }


ACCEPTED_REPORTS = {
    # case -> (change to a good report): each edge of its unit's range
    "a share of 0 percent": {"indicator": "KOP_PARTISIPASI", "value": "0"},
    "a share of 100 percent": {"indicator": "KOP_PARTISIPASI", "value": "100.000000"},
    "whole persons written with zero decimals": {"value": "1500.00"},
    "Rp1 quadrillion": {"indicator": "KOP_PRODUKSI_VOLUME", "value": "1000000000000000"},
    "a regency": {"jurisdiction": "62.71"},
    "a province": {"jurisdiction": "62"},
    "a qualifier of more_than": {"qualifier": "more_than"},
}


@pytest.mark.usefixtures("reported")
@pytest.mark.parametrize("case", list(ACCEPTED_REPORTS))
def test_a_realisation_within_its_unit_and_at_a_planning_level_is_kept(
    api: Api, demo_url: str, case: str
) -> None:
    before = _realisation_count(demo_url)
    report = {**_report("62", "1500")["report"], **ACCEPTED_REPORTS[case]}
    answer = api.graphql(REPORT, "demo-province-62", {"report": report})
    assert "errors" not in answer, answer
    assert _realisation_count(demo_url) == before + 1


REFUSED_GUARANTEES: dict[str, tuple[dict[str, Any], str, str]] = {
    # case -> (change to a good guarantee, the field named, the start of its reason)
    "an end in the year 9999": (
        {"endsOn": "9999-12-31"},
        "guarantee.endsOn",
        "must be within the loan's tenor of 24 months: by 2028-01-20",
    ),
    "an end a day beyond the tenor": (
        {"endsOn": "2028-01-21"},
        "guarantee.endsOn",
        "must be within the loan's tenor",
    ),
    "an end before the start": ({"endsOn": "2026-01-19"}, "guarantee.endsOn", "must be after"),
    "a start in the future": (
        {"startsOn": "9998-01-01", "endsOn": "9999-12-31"},
        "guarantee.startsOn",
        "must not be in the future",
    ),
    "a bank of 300,000 characters": ({"bank": "B" * 300_000}, "guarantee.bank", "must be at most"),
    "a bank turned around by U+202E": (
        {"bank": "\u202eBank Kalteng"},
        "guarantee.bank",
        "must not contain control",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_GUARANTEES))
def test_a_guarantee_is_checked_as_a_record_write_is(api: Api, case: str) -> None:
    change, field, reason = REFUSED_GUARANTEES[case]
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(_check(api, request))
    refused = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"], **change))
    assert refused["data"] == {"recordGuarantee": None}
    (error,) = refused["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", field)
    assert error["message"].startswith(f"{field}: {reason}")
    # Nothing was stored: the decision can still be guaranteed.
    assert "errors" not in api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))


def test_a_guarantee_names_every_rule_it_breaks(api: Api) -> None:
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(_check(api, request))
    bad = {
        "bank": "\u202e",
        "startsOn": "2026-01-14",
        "endsOn": "9999-12-31",
        "coverageAmount": "0",
    }
    (error,) = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"], **bad))["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert [problem["field"] for problem in error["extensions"]["problems"]] == [
        "guarantee.bank",
        "guarantee.startsOn",
        "guarantee.endsOn",
        "guarantee.coverageAmount",
    ]


NOTED_STATUS = """
mutation Status($id: ID!, $on: Date!, $note: String) {
  changeGuaranteeStatus(guaranteeId: $id, status: CLAIMED, effectiveOn: $on, note: $note) {
    status history { toStatus note }
  }
}
"""


def test_a_status_change_is_checked_as_a_record_write_is(api: Api, clock: Clock) -> None:
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _decision(_check(api, request))
    recorded = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
    guarantee = recorded["data"]["recordGuarantee"]
    clock.day = ISSUED_BY
    cases = [
        (
            {"note": "\u202e" + "n" * 300_000},
            "note",
            "must not contain control or invisible characters",
        ),
        ({"note": "n" * 1001}, "note", "must be at most 1000 characters"),
        ({"on": "9999-01-01"}, "effectiveOn", "must not be in the future"),
        (
            {"on": "2026-01-19"},
            "effectiveOn",
            "must not be before the guarantee started on 2026-01-20: 2026-01-20 or later",
        ),
    ]
    for change, field, reason in cases:
        variables = {"id": guarantee["id"], "on": "2026-10-01", "note": "kol 3", **change}
        refused = api.graphql(NOTED_STATUS, JAMKRIDA, variables)
        assert refused["data"] == {"changeGuaranteeStatus": None}, change
        (error,) = refused["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "BAD_USER_INPUT",
            field,
        )
        assert error["message"] == f"{field}: {reason}"
    both = {"id": guarantee["id"], "on": "9999-01-01", "note": "\u202e"}
    (error,) = api.graphql(NOTED_STATUS, JAMKRIDA, both)["errors"]
    assert [problem["field"] for problem in error["extensions"]["problems"]] == [
        "effectiveOn",
        "note",
    ]
    # Nothing was written: the guarantee is as recorded, and takes a good change.
    good = {"id": guarantee["id"], "on": "2026-10-01", "note": "  kol 3,   laporan bank  "}
    changed = api.graphql(NOTED_STATUS, JAMKRIDA, good)["data"]["changeGuaranteeStatus"]
    assert changed["history"] == [
        {"toStatus": "ACTIVE", "note": None},
        {"toStatus": "CLAIMED", "note": "kol 3, laporan bank"},
    ]


REVIEW = """
mutation Resolve($id: ID!, $reviewer: String!, $reason: String!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: $reviewer,
                           reason: $reason) { finalVerdict review { reviewer reason } }
}
"""


def test_a_review_is_checked_as_a_record_write_is(api: Api) -> None:
    request = _request(
        {"legalEntityNo": "AHU-9990001.AH.01.26.TAHUN 2019"}, 100_000_000, 36, maxCollectibility=1
    )
    decision = _decision(_check(api, request))
    assert decision["verdict"] == "NEEDS_REVIEW"
    good = {"id": decision["id"], "reviewer": "Ir. Contoh Analis", "reason": "kelayakan dicek"}
    cases = [
        ({"reviewer": "\u202eIr. Contoh"}, "reviewer", "must not contain control"),
        ({"reviewer": "R" * 201}, "reviewer", "must be at most 200 characters"),
        ({"reason": "x" * 300_000}, "reason", "must be at most 1000 characters"),
        ({"reason": "ok\u0007"}, "reason", "must not contain control"),
        ({"reason": "   "}, "reason", "must not be empty"),
    ]
    for change, field, reason in cases:
        refused = api.graphql(REVIEW, JAMKRIDA, {**good, **change})
        assert refused["data"] == {"resolveEligibilityReview": None}, change
        (error,) = refused["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "BAD_USER_INPUT",
            field,
        )
        assert error["message"].startswith(f"{field}: {reason}")
    both = {**good, "reviewer": "\u202e", "reason": "x" * 1001}
    (error,) = api.graphql(REVIEW, JAMKRIDA, both)["errors"]
    assert [problem["field"] for problem in error["extensions"]["problems"]] == [
        "reviewer",
        "reason",
    ]
    # Nothing was written: the decision still awaits its one review.
    reviewed = api.graphql(REVIEW, JAMKRIDA, {**good, "reviewer": "  Ir.  Contoh Analis "})
    assert reviewed["data"]["resolveEligibilityReview"] == {
        "finalVerdict": "ELIGIBLE",
        "review": {"reviewer": "Ir. Contoh Analis", "reason": "kelayakan dicek"},
    }
