"""Operations answered by their plan (schema/plan.py) over HTTP: the answer GraphQL prescribes, in
selection order, audited like any read; and what the plan does not take on (a refused guard,
a refused argument, a failure) answered by the executor with its coded errors. An eligibility
check's plan answers as the executor does: the same decision, the same coded error naming the
field, the same audit entry."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from db.queries import eligibility as eligibility_queries
from db.queries import json_pages
from schema import engine
from tests.support.clock import Clock
from tests.support.executor import audit_head, entries_after, latest_entry
from tests.support.http import Api
from tests.support.statements import recorded_statements
from tests.test_eligibility_api import CHECKED_ON

PROVINCE = "demo-province-62"
NIB = "9990000000001"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Checks dated 2026-01-15 are made days later: a check may be dated a fortnight back."""
    return Clock(monkeypatch, CHECKED_ON)


def test_several_roots_answer_in_selection_order_under_their_aliases(api: Api) -> None:
    answer = api.graphql(
        f'{{ second: msme(nib: "{NIB}") {{ name }} __typename'
        f' first: msme(nib: "{NIB}") {{ nib }} missing: msme(nib: "9999999999999") {{ nib }} }}',
        PROVINCE,
    )
    assert "errors" not in answer
    assert list(answer["data"]) == ["second", "__typename", "first", "missing"]
    assert answer["data"]["first"] == {"nib": NIB}
    assert answer["data"]["__typename"] == "Query"
    assert answer["data"]["missing"] is None


PAGE = """query Page($size: Int, $after: String) {
  msmes(first: $size, after: $after, filter: {region: "62"}) {
    __typename totalCount pageInfo { endCursor hasNextPage } nodes { nib } } }"""


def test_pages_follow_their_cursors_with_one_statement_each(api: Api) -> None:
    with recorded_statements() as statements:
        first = api.graphql(PAGE, PROVINCE, {"size": 2})["data"]["msmes"]
    assert len([sql for sql in statements if "json_agg" in sql]) == 1
    assert first["__typename"] == "MsmeConnection"
    assert list(first) == ["__typename", "totalCount", "pageInfo", "nodes"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["totalCount"] > 2
    end = base64.urlsafe_b64decode(first["pageInfo"]["endCursor"]).decode()
    assert end.startswith("msme:")
    after = first["pageInfo"]["endCursor"]
    second = api.graphql(PAGE, PROVINCE, {"size": 2, "after": after})["data"]["msmes"]
    seen = {node["nib"] for node in first["nodes"]}
    assert len(second["nodes"]) == 2
    assert not seen & {node["nib"] for node in second["nodes"]}


def test_a_planned_page_is_audited_with_its_records_and_guarded_field(
    api: Api, demo_url: str
) -> None:
    api.graphql(PAGE, PROVINCE, {"size": 3})
    entry = latest_entry(demo_url, PROVINCE).entry
    assert entry["operation"] == "Page"
    assert entry["records"] == {"msme": 3}
    assert entry["fields"] == {"Query.msmes": ["records:read"]}
    assert "Msme.nib" in entry["touched"]


@pytest.mark.parametrize(
    ("query", "client_id", "code", "field"),
    [
        (f'{{ msme(nib: "{NIB}") {{ nib }} }}', "demo-ministry", "FORBIDDEN", None),
        ('{ msme(nib: "12") { nib } }', PROVINCE, "BAD_USER_INPUT", "nib"),
        ("{ msmes(first: 0) { nodes { nib } } }", PROVINCE, "BAD_USER_INPUT", "first"),
        (
            '{ msmes(after: "bm90IGEgY3Vyc29y") { nodes { nib } } }',
            PROVINCE,
            "BAD_USER_INPUT",
            "after",
        ),
    ],
)
def test_what_the_plan_refuses_the_executor_answers_with_a_coded_error(
    api: Api, query: str, client_id: str, code: str, field: str | None
) -> None:
    answer = api.graphql(query, client_id)
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == code
    if field is not None:
        assert error["extensions"]["field"] == field
    assert next(iter(answer["data"].values())) is None


def test_a_failing_statement_is_a_coded_internal_error_and_no_record_is_audited(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.graphql(PAGE, PROVINCE, {"size": 1})
    before = latest_entry(demo_url, PROVINCE).entry

    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(json_pages, "fetch", broken)
    answer = api.graphql(PAGE, PROVINCE, {"size": 2})
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert answer["data"] == {"msmes": None}
    assert latest_entry(demo_url, PROVINCE).entry == before


VIEWER = """query Start($nib: String!) {
  me: viewer%s { __typename scopes who: clientId orgKind jurisdiction }
  msme(nib: $nib) { nib } }"""


def test_the_viewer_beside_a_lookup_is_answered_by_the_plan_as_the_executor_answers_it(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app's first request asks who it is beside its data: the viewer, from the token, does
    not send the lookup to the executor, and the entry says what the executor's says."""
    executed = api.graphql(VIEWER % " @include(if: true)", PROVINCE, {"nib": NIB})
    executed_entry = latest_entry(demo_url, PROVINCE)
    monkeypatch.setattr(engine, "execute", _refused)
    with recorded_statements() as statements:
        planned = api.graphql(VIEWER % "", PROVINCE, {"nib": NIB})
    assert planned == executed
    me = planned["data"]["me"]
    assert list(me) == ["__typename", "scopes", "who", "orgKind", "jurisdiction"]
    assert me["__typename"] == "Viewer"
    assert (me["who"], me["orgKind"], me["jurisdiction"]) == (PROVINCE, "province", "62")
    assert "records:read" in me["scopes"]
    assert me["scopes"] == sorted(me["scopes"])
    assert planned["data"]["msme"] == {"nib": NIB}
    assert len([sql for sql in statements if "json_build_object" in sql]) == 1
    (planned_entry,) = entries_after(demo_url, PROVINCE, executed_entry.seq)
    for key in ("records", "fields", "touched"):
        assert planned_entry.entry[key] == executed_entry.entry[key], key


JAMKRIDA = "demo-jamkrida-62"
CHECK = """mutation Check($request: EligibilityRequest!) {
  checkEligibility(request: $request)%s {
    __typename id subjectKey product rulesetVersion checkDate loanAmount tenorMonths verdict
    coverageAmount estimatedFee decidedAt } }"""
PLANNED_CHECK = CHECK % ""
EXECUTED_CHECK = CHECK % " @include(if: true)"  # a directive: the plan leaves it to the executor
REQUEST = {
    "nib": NIB,
    "product": "JAMKRIDA_KTG_PRODUKTIF",
    "loanAmount": "50000000",
    "tenorMonths": 24,
    "checkDate": "2026-01-15",
    "attestation": {
        "maxCollectibility": 1,
        "hasOtherProductiveCredit": False,
        "feasibilityApproved": True,
        "onNationalBlacklist": False,
        "hasNpwp": True,
    },
}


def _refused(*args: Any, **kwargs: Any) -> None:
    """Stands in for the executor where only the plan may answer."""
    raise AssertionError("the executor was asked")


def _audited(url: str) -> dict[str, Any]:
    entry = latest_entry(url, JAMKRIDA).entry
    return {key: entry[key] for key in ("operation", "records", "fields", "touched")}


def test_a_check_is_answered_by_its_plan_as_the_executor_answers_it(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    executed = api.graphql(EXECUTED_CHECK, JAMKRIDA, {"request": REQUEST})
    executed_entry = _audited(demo_url)
    with monkeypatch.context() as patched:
        patched.setattr(engine, "execute", _refused)
        planned = api.graphql(PLANNED_CHECK, JAMKRIDA, {"request": REQUEST})
    assert "errors" not in planned
    assert _audited(demo_url) == executed_entry
    assert planned["data"].keys() == executed["data"].keys() == {"checkEligibility"}
    decision, expected = planned["data"]["checkEligibility"], executed["data"]["checkEligibility"]
    assert list(decision) == list(expected)
    assert decision["id"] != expected["id"]  # each check stores its own decision
    assert decision["decidedAt"] >= expected["decidedAt"]
    same = [key for key in expected if key not in ("id", "decidedAt")]
    assert {key: decision[key] for key in same} == {key: expected[key] for key in same}
    assert decision["verdict"] == "ELIGIBLE"
    assert decision["loanAmount"] == "50000000"
    checked = api.graphql(
        "query D($id: ID!) { eligibilityDecision(id: $id) { id decidedAt } }",
        JAMKRIDA,
        {"id": decision["id"]},
    )
    assert checked["data"]["eligibilityDecision"] == {
        "id": decision["id"],
        "decidedAt": decision["decidedAt"],
    }


@pytest.mark.parametrize(
    ("change", "client_id", "code", "field"),
    [
        ({"nib": "12345"}, JAMKRIDA, "BAD_USER_INPUT", "request.nib"),
        ({"nib": "9990000009999"}, JAMKRIDA, "NOT_FOUND", "request.nib"),
        ({"product": "NO_SUCH_PRODUCT"}, JAMKRIDA, "BAD_USER_INPUT", "request.product"),
        (
            {"attestation": {"maxCollectibility": 6}},
            JAMKRIDA,
            "BAD_USER_INPUT",
            "request.attestation.maxCollectibility",
        ),
        ({}, "demo-province-62", "FORBIDDEN", None),  # the guard's refusal is the executor's
    ],
)
def test_a_refused_check_is_the_executors_coded_error_and_records_nothing(
    api: Api,
    demo_url: str,
    change: dict[str, Any],
    client_id: str,
    code: str,
    field: str | None,
) -> None:
    request = {**REQUEST, **change}
    before = audit_head(demo_url)
    planned = api.graphql(PLANNED_CHECK, client_id, {"request": request})
    executed = api.graphql(EXECUTED_CHECK, client_id, {"request": request})
    assert planned == executed
    assert planned["data"] == {"checkEligibility": None}
    (error,) = planned["errors"]
    assert error["extensions"]["code"] == code
    assert error["path"] == ["checkEligibility"]
    if field is not None:
        assert error["message"].startswith(f"{field}: ")
    # A refused check hands out no decision, so neither path records one.
    assert entries_after(demo_url, client_id, before) == []


def test_a_refused_check_is_answered_by_its_plan_without_the_executor(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "execute", _refused)
    answer = api.graphql(PLANNED_CHECK, JAMKRIDA, {"request": {**REQUEST, "nib": "9990000009999"}})
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "request.nib"}
    assert error["locations"] == [{"line": 2, "column": 3}]


def test_two_checks_in_one_operation_are_the_executors(api: Api) -> None:
    """The plan makes at most one write: one refused after another had written could not be
    answered again from the start."""
    answer = api.graphql(
        """mutation Two($request: EligibilityRequest!) {
          first: checkEligibility(request: $request) { verdict }
          second: checkEligibility(request: $request) { verdict } }""",
        JAMKRIDA,
        {"request": REQUEST},
    )
    assert answer == {"data": {"first": {"verdict": "ELIGIBLE"}, "second": {"verdict": "ELIGIBLE"}}}


def test_a_mutations_typename_is_answered_by_its_plan(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "execute", _refused)
    assert api.graphql("mutation { __typename }", JAMKRIDA) == {"data": {"__typename": "Mutation"}}


def test_a_failing_write_is_a_coded_internal_error_and_is_not_made_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    async def broken(*args: Any) -> None:
        attempts.append(args)
        raise RuntimeError("a bug")

    monkeypatch.setattr(eligibility_queries, "store_decision", broken)
    monkeypatch.setattr(engine, "execute", _refused)
    answer = api.graphql(PLANNED_CHECK, JAMKRIDA, {"request": REQUEST})
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["path"] == ["checkEligibility"]
    assert answer["data"] == {"checkEligibility": None}
    assert len(attempts) == 1
