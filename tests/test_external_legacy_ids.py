"""Decisions and guarantees an SSO app's BUMD users stored while their principal was
`ISSUER#CLIENT`, before the org kind and jurisdiction became part of it. Upgraded, no token
carried that id, so a guarantee issued before could never be claimed, its cover no longer
counted towards the gearing limit, R13 forgot its default and the guarantee feed dropped it.
Each is now the new principal's own inside its jurisdiction, and another jurisdiction's
principal of the same app still gets none of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from auth import external
from auth.scopes import OrgKind
from sinergi.settings import Settings
from tests.support.clock import Clock
from tests.support.databases import run
from tests.support.http import Api, served
from tests.support.sso import Realm, serving_realm, user_claims
from tests.test_eligibility_api import (
    CHECK,
    CHECKED_ON,
    FULL_ATTESTATION,
    RECORD,
    _eligible_nib_in,
    _guarantee,
    _request,
)
from tests.test_external_principals import DECISION, ROLES, _ask, _data, set_equity

REALM = "https://sso.example.go.id/realms/bumd-legacy"
APP = "legacy-portal"
LEGACY_ID = f"{REALM}#{APP}"
CLAIMED = "2026-01-20"
GUARANTEED_IN = "62.12"
"""Where the guarantee that is claimed after the upgrade lies; no other test records one here."""
DEFAULTED_IN = "62.04"
"""Where the guarantee that defaulted before the upgrade lies; no other test records one here."""
STATUS = """mutation($id: ID!, $status: GuaranteeStatus!) {
  changeGuaranteeStatus(guaranteeId: $id, status: $status, effectiveOn: "2026-01-20") { status }
}"""
FEED = """query($after: String) {
  guaranteeChanges(after: $after, first: 1000) { entries { id } endCursor hasMore } }"""


@dataclass(frozen=True)
class Legacy:
    api: Api
    realm: Realm
    issuers: str
    guaranteed: str
    """A 62 decision of the older id, guaranteed (the guarantee `guarantee`, still active)."""
    guarantee: str
    defaulted: str
    """The business (NIB) whose guarantee of the older id defaulted."""
    kalbar: str
    """A 61 decision of the older id."""


def _token(realm: Realm, jurisdiction: str) -> str:
    claims = user_claims(
        REALM,
        sub=f"user-{jurisdiction}",
        azp=APP,
        org_kind="bumd",
        jurisdiction=jurisdiction,
        roles=ROLES,
    )
    return realm.token(claims)


def _check(api: Api, token: str, nib: str) -> dict[str, Any]:
    request = _request({"nib": nib}, 50_000_000, 24, **FULL_ATTESTATION)
    decision: dict[str, Any] = _data(
        _ask(api, token, CHECK, {"request": request}), "checkEligibility"
    )
    return decision


def _older_form(issuer: str, claimed: str, org_kind: OrgKind, jurisdiction: str) -> str:
    """The id an external principal had before the upgrade."""
    return f"{issuer}#{claimed}"


@pytest.fixture(scope="module")
def legacy(demo_url: str) -> Iterator[Legacy]:
    """Stored by the same app's 62 and 61 users while both were the principal LEGACY_ID, on
    the scenario's day: a guarantee, a guarantee since defaulted, and a decision of each."""
    with serving_realm() as realm:
        issuer = {
            "issuer": REALM,
            "jwks_url": realm.jwks_url,
            "audience": "sinergi",
            "scope_claim": "realm_access.roles",
        }
        issuers = json.dumps([issuer])
        settings = Settings(external_issuers=issuers, rate_limit=1_000_000)
        with served(demo_url, settings) as api, pytest.MonkeyPatch.context() as patch:
            Clock(patch, CHECKED_ON)
            patch.setattr(external, "external_client_id", _older_form)
            kalteng, kalbar = _token(realm, "62"), _token(realm, "61")
            viewer = _data(_ask(api, kalteng, "{ viewer { clientId } }"), "viewer")
            assert viewer == {"clientId": LEGACY_ID}
            # Set as the owner had to before `set-equity` took an external id.
            run(demo_url, "INSERT INTO guarantors (client_id, equity) VALUES ($1, 5e10)", LEGACY_ID)
            guaranteed = _check(api, kalteng, _eligible_nib_in(demo_url, GUARANTEED_IN))["id"]
            guarantee = _data(_ask(api, kalteng, RECORD, _guarantee(guaranteed)), "recordGuarantee")
            defaulted = _eligible_nib_in(demo_url, DEFAULTED_IN)
            lost = _data(
                _ask(api, kalteng, RECORD, _guarantee(_check(api, kalteng, defaulted)["id"])),
                "recordGuarantee",
            )
            _data(
                _ask(api, kalteng, STATUS, {"id": lost["id"], "status": "DEFAULTED"}),
                "changeGuaranteeStatus",
            )
            kalbar_decision = _check(api, kalbar, "9990000000003")["id"]
            patch.undo()
            yield Legacy(
                api, realm, issuers, guaranteed, guarantee["id"], defaulted, kalbar_decision
            )


def _new(legacy: Legacy, jurisdiction: str) -> str:
    """A token of the same app's user in `jurisdiction`, after the upgrade."""
    return _token(legacy.realm, jurisdiction)


def test_the_new_principal_reads_its_jurisdictions_decisions_of_the_older_id(
    legacy: Legacy,
) -> None:
    kalteng, kalbar = _new(legacy, "62"), _new(legacy, "61")
    assert _data(_ask(legacy.api, kalteng, "{ viewer { clientId } }"), "viewer") == {
        "clientId": f"{LEGACY_ID}@bumd:62"
    }
    own = _ask(legacy.api, kalteng, DECISION, {"id": legacy.guaranteed})
    assert _data(own, "eligibilityDecision")["verdict"] == "ELIGIBLE"
    theirs = _ask(legacy.api, kalbar, DECISION, {"id": legacy.guaranteed})
    assert theirs == {"data": {"eligibilityDecision": None}}  # another jurisdiction's
    kalbar_own = _ask(legacy.api, kalbar, DECISION, {"id": legacy.kalbar})
    assert _data(kalbar_own, "eligibilityDecision")["verdict"] is not None
    assert _ask(legacy.api, kalteng, DECISION, {"id": legacy.kalbar}) == {
        "data": {"eligibilityDecision": None}
    }


def test_a_guarantee_of_the_older_id_can_still_be_claimed(legacy: Legacy, clock: Clock) -> None:
    """It was NOT_FOUND to every token after the upgrade; to the 61 user it still is."""
    claim = {"id": legacy.guarantee, "status": "CLAIMED"}
    refused = _ask(legacy.api, _new(legacy, "61"), STATUS, claim)
    assert refused["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "guaranteeId"}
    claimed = _ask(legacy.api, _new(legacy, "62"), STATUS, claim)
    assert _data(claimed, "changeGuaranteeStatus") == {"status": "CLAIMED"}


def test_r13_counts_a_default_of_the_older_id(legacy: Legacy, clock: Clock) -> None:
    """A new check of the business whose guarantee defaulted was ELIGIBLE."""
    decision = _check(legacy.api, _new(legacy, "62"), legacy.defaulted)
    assert decision["verdict"] == "NOT_ELIGIBLE"
    (r13,) = [result for result in decision["results"] if result["ruleId"] == "R13"]
    assert r13["outcome"] == "FAIL"


def test_the_gearing_limit_counts_the_cover_of_the_older_id(
    legacy: Legacy, demo_url: str, clock: Clock
) -> None:
    """Rp2 juta of equity geared 20 times is Rp40 juta: the older id's outstanding Rp35 juta
    leaves no room for another Rp35 juta; left out, it did."""
    kalteng = _new(legacy, "62")
    new_id = f"{LEGACY_ID}@bumd:62"
    assert set_equity(demo_url, legacy.issuers, new_id, "2000000")[0] == 0
    decision = _check(legacy.api, kalteng, _eligible_nib_in(demo_url, GUARANTEED_IN))
    refused = _ask(legacy.api, kalteng, RECORD, _guarantee(decision["id"]))
    (error,) = refused["errors"]
    assert error["message"].startswith("guarantee.coverageAmount: would exceed"), error
    assert set_equity(demo_url, legacy.issuers, new_id, "50000000000")[0] == 0
    _data(_ask(legacy.api, kalteng, RECORD, _guarantee(decision["id"])), "recordGuarantee")


def test_the_guarantee_feed_carries_the_older_ids_guarantees(legacy: Legacy) -> None:
    def fed(jurisdiction: str) -> set[str]:
        token, after, ids = _new(legacy, jurisdiction), None, set()
        while True:
            page = _data(_ask(legacy.api, token, FEED, {"after": after}), "guaranteeChanges")
            ids |= {entry["id"] for entry in page["entries"]}
            if not page["hasMore"]:
                return ids
            after = page["endCursor"]

    assert legacy.guarantee in fed("62")
    assert legacy.guarantee not in fed("61")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, CHECKED_ON)


def test_a_claim_spelling_anothers_id_gets_no_rows_as_an_older_id(
    legacy: Legacy, clock: Clock
) -> None:
    """A client claiming `legacy-portal@bumd:62` would have had, as its older id, the current
    id of the app's 62 principal: that principal's decisions would be its own."""
    kalteng = _new(legacy, "62")
    decision = _check(legacy.api, kalteng, "9990000000001")["id"]
    claims = user_claims(
        REALM,
        sub="user-spelling",
        azp=f"{APP}@bumd:62",
        org_kind="bumd",
        jurisdiction="62",
        roles=ROLES,
    )
    impostor = legacy.realm.token(claims)
    assert _ask(legacy.api, impostor, DECISION, {"id": decision}) == {
        "data": {"eligibilityDecision": None}
    }
