"""What a guarantor's decisions and guarantees rest on besides its own request, through the real
schema: R13 counts the guarantor's own defaulted guarantees, never a rival's.

A rival guarantor of the same province attacks PT Jamkrida Kalteng's business with it: it checks
the business (the lender's facts are whatever the caller attests), records a guarantee of Rp1 of
cover on its decision and marks it defaulted the same day (a default is final). Counted against
every guarantor, that default made each of Jamkrida's checks of the business NOT_ELIGIBLE and
voided its earlier ELIGIBLE decisions at recordGuarantee, and told it of the rival's default.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tests.support.clients import second_guarantor
from tests.support.clock import Clock
from tests.support.demo_data import demo_clients
from tests.support.http import Api, served
from tests.test_eligibility_api import (
    CHECK,
    FULL_ATTESTATION,
    JAMKRIDA,
    RECORD,
    STATUS,
    _decision,
    _guarantee,
    _request,
)
from tests.test_eligibility_registry import _register

RIVAL = "uji-jamkrida-saingan"
"""A second guarantor of Kalimantan Tengah, the attacker; PT Jamkrida Kalteng is its victim."""
TODAY = date(2026, 12, 7)
"""Under rule set 2026.4, which words R13 as the guarantor's own guarantees."""
ISSUED = {"startsOn": TODAY.isoformat(), "endsOn": "2028-12-07"}
"""A guarantee issued on the day of the checks, for the loan's 24 months."""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, TODAY)


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    """The app over a database of this module's own: the province registers the businesses,
    PT Jamkrida Kalteng and its rival check and guarantee them."""
    demo_clients(module_reference_url)
    second_guarantor(module_reference_url, RIVAL)
    with served(module_reference_url) as served_api:
        yield served_api


def _business(api: Api, nib: str) -> dict[str, Any]:
    """A micro business of Palangka Raya that passes every rule: the request to check it today."""
    _register(api, nib, capital="50000000", annualTurnover="240000000")
    return _request({"nib": nib}, 50_000_000, 24, **FULL_ATTESTATION, checkDate=None)


def _checked(api: Api, request: dict[str, Any], client_id: str) -> dict[str, Any]:
    return _decision(api.graphql(CHECK, client_id, {"request": request}))


def _r13(decision: dict[str, Any]) -> tuple[str, str]:
    (r13,) = [r for r in decision["results"] if r["ruleId"] == "R13"]
    assert r13["messageEn"].endswith(
        "guarantee this guarantor issued for this business is in default."
    )
    return r13["outcome"], r13["reason"]


def _guaranteed(api: Api, client_id: str, decision_id: str, **terms: str) -> str:
    recorded = api.graphql(RECORD, client_id, _guarantee(decision_id, **{**ISSUED, **terms}))
    assert "errors" not in recorded, recorded
    guarantee_id: str = recorded["data"]["recordGuarantee"]["id"]
    return guarantee_id


def _defaulted(api: Api, client_id: str, guarantee_id: str) -> None:
    variables = {"id": guarantee_id, "status": "DEFAULTED", "on": ISSUED["startsOn"]}
    answer = api.graphql(STATUS, client_id, variables)
    assert answer["data"]["changeGuaranteeStatus"]["status"] == "DEFAULTED", answer


def test_a_rivals_default_of_rp1_changes_neither_the_guarantors_verdict_nor_its_guarantee(
    api: Api,
) -> None:
    request = _business(api, "7791000000001")
    before = _checked(api, request, JAMKRIDA)
    kept = _checked(api, request, JAMKRIDA)  # to be guaranteed after the rival's default
    assert (before["verdict"], _r13(before)) == ("ELIGIBLE", ("PASS", "pass"))

    rivals = _checked(api, request, RIVAL)
    assert rivals["verdict"] == "ELIGIBLE"
    _defaulted(api, RIVAL, _guaranteed(api, RIVAL, rivals["id"], coverageAmount="1"))

    after = _checked(api, request, JAMKRIDA)
    assert (after["verdict"], _r13(after)) == ("ELIGIBLE", ("PASS", "pass"))
    assert after["results"] == before["results"]  # nothing tells Jamkrida of the rival's book
    _guaranteed(api, JAMKRIDA, kept["id"])
    # The rival's default is the rival's: its own next check fails R13.
    assert _r13(_checked(api, request, RIVAL)) == ("FAIL", "defaulted")


def test_the_guarantors_own_default_still_fails_r13_for_it_alone(api: Api) -> None:
    request = _business(api, "7791000000002")
    first = _checked(api, request, JAMKRIDA)
    earlier = _checked(api, request, JAMKRIDA)  # made before the default
    _defaulted(api, JAMKRIDA, _guaranteed(api, JAMKRIDA, first["id"]))

    again = _checked(api, request, JAMKRIDA)
    assert (again["verdict"], _r13(again)) == ("NOT_ELIGIBLE", ("FAIL", "defaulted"))
    stale = api.graphql(RECORD, JAMKRIDA, _guarantee(earlier["id"], **ISSUED))
    (error,) = stale["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "guarantee.decisionId",
    )
    rivals = _checked(api, request, RIVAL)
    assert (rivals["verdict"], _r13(rivals)) == ("ELIGIBLE", ("PASS", "pass"))
