"""Two BUMD users of a Keycloak realm, one of Kalimantan Tengah (62) and one of Kalimantan Barat
(61), log in through the same portal, so their access tokens carry the same `azp`. A reviewer
had the 61 user read the 62 user's eligibility decision (its loan, its province) by its id:
both were the principal `REALM#portal`. Each must be a principal of its own, and keep its own.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from joserfc import jws

from auth.external import ExternalIssuer, principal_from_claims
from auth.principal import Principal
from auth.scopes import OrgKind
from auth.tokens import InvalidToken
from db.engine import create_engine
from db.queries import eligibility as decisions
from db.queries import guarantees
from resolvers.policy import AccessPolicy
from sinergi.settings import Settings
from tests.support.cli import sinergi
from tests.support.clock import Clock
from tests.support.databases import as_service, run
from tests.support.demo_data import release_figures
from tests.support.http import Api, served
from tests.support.sso import KID, Realm, province_level, serving_realm, user_claims
from tests.test_eligibility_api import (
    CHECK,
    CHECKED_ON,
    FULL_ATTESTATION,
    RECORD,
    _eligible_nib_in,
    _guarantee,
    _request,
)

REALM = "https://sso.example.go.id/realms/bumd"
ROLES = ["eligibility:check", "guarantees:write", "aggregates:read"]
REGENCY = "62.13"
"""Kabupaten Barito Timur, where no other test records a guarantee: the 62 user's alone."""
DECISION = """query($id: ID!) { eligibilityDecision(id: $id) {
  verdict checkDate loanAmount results { ruleId outcome } replay { verdict } } }"""
STATUS = """mutation($id: ID!) {
  changeGuaranteeStatus(guaranteeId: $id, status: CLAIMED, effectiveOn: "2026-01-20") { status }
}"""
FIGURES = f"""{{ guaranteeFigures(groupBy: [REGENCY], region: "{REGENCY}") {{
  key {{ value }} suppressed count amountSum ownCount ownAmountSum }} }}"""


@dataclass(frozen=True)
class Users:
    api: Api
    realm: Realm
    issuers: str
    """SINERGI_EXTERNAL_ISSUERS, as the server and the CLI are configured."""
    kalteng: str
    """The 62 user's token."""
    kalbar: str
    """The 61 user's token, from the same portal."""


@pytest.fixture(scope="module")
def users(demo_url: str) -> Iterator[Users]:
    with serving_realm() as realm:
        issuer = {
            "issuer": REALM,
            "jwks_url": realm.jwks_url,
            "audience": "sinergi",
            "scope_claim": "realm_access.roles",
        }
        issuers = json.dumps([issuer])
        settings = Settings(external_issuers=issuers, rate_limit=1_000_000, figures_cache_seconds=0)
        with served(demo_url, settings) as api:
            yield Users(
                api, realm, issuers, _token(realm, "user-1", "62"), _token(realm, "user-2", "61")
            )


def _token(realm: Realm, sub: str, jurisdiction: str) -> str:
    claims = user_claims(
        REALM, sub=sub, azp="portal", org_kind="bumd", jurisdiction=jurisdiction, roles=ROLES
    )
    return realm.token(claims)


def _ask(api: Api, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = api.post({"query": query, "variables": variables}, token)
    assert response.status_code == 200, response.text
    return response.json()


def _data(answer: dict[str, Any], field: str) -> Any:
    assert "errors" not in answer, answer
    return answer["data"][field]


def _client_id(users: Users, token: str) -> str:
    return str(_data(_ask(users.api, token, "{ viewer { clientId } }"), "viewer")["clientId"])


def set_equity(url: str, issuers: str, client_id: str, rupiah: str) -> tuple[int, str, str]:
    """`sinergi guarantors set-equity CLIENT_ID RUPIAH`, the issuers configured as `issuers`."""
    env = {"SINERGI_EXTERNAL_ISSUERS": issuers}
    return sinergi(url, "guarantors", "set-equity", client_id, rupiah, env=env)


@dataclass(frozen=True)
class Stored:
    checked: str
    """The 62 user's ELIGIBLE decision, not guaranteed."""
    guaranteed: str
    """The 62 user's ELIGIBLE decision in REGENCY, guaranteed."""
    guarantee: str
    kalbar: str
    """The 61 user's own decision."""


@pytest.fixture(scope="module")
def stored(users: Users, demo_url: str) -> Stored:
    """Checked and guaranteed on the scenario's day, as the project clock says."""
    api = users.api
    kalteng = _client_id(users, users.kalteng)
    assert set_equity(demo_url, users.issuers, kalteng, "50000000000")[0] == 0  # as the demo's
    with pytest.MonkeyPatch.context() as patch:
        Clock(patch, CHECKED_ON)

        def check(token: str, nib: str) -> str:
            request = _request({"nib": nib}, 50_000_000, 24, **FULL_ATTESTATION)
            decision = _data(_ask(api, token, CHECK, {"request": request}), "checkEligibility")
            return str(decision["id"])

        checked = check(users.kalteng, "9990000000001")
        guaranteed = check(users.kalteng, _eligible_nib_in(demo_url, REGENCY))
        recorded = _ask(api, users.kalteng, RECORD, _guarantee(guaranteed))
        kalbar = check(users.kalbar, "9990000000003")
    release_figures(demo_url)  # guarantee figures are read from the release
    return Stored(checked, guaranteed, _data(recorded, "recordGuarantee")["id"], kalbar)


def test_users_of_one_portal_in_two_jurisdictions_are_two_principals(users: Users) -> None:
    assert _client_id(users, users.kalteng) == f"{REALM}#portal@bumd:62"
    assert _client_id(users, users.kalbar) == f"{REALM}#portal@bumd:61"


def test_the_61_user_cannot_read_the_62_users_decision(users: Users, stored: Stored) -> None:
    for decision in (stored.checked, stored.guaranteed):
        answer = _ask(users.api, users.kalbar, DECISION, {"id": decision})
        assert answer == {"data": {"eligibilityDecision": None}}  # as any other client's
    own = _data(
        _ask(users.api, users.kalteng, DECISION, {"id": stored.checked}), "eligibilityDecision"
    )
    assert (own["verdict"], own["loanAmount"]) == ("ELIGIBLE", "50000000")
    kalbar = _ask(users.api, users.kalbar, DECISION, {"id": stored.kalbar})
    assert _data(kalbar, "eligibilityDecision")["checkDate"] == "2026-01-15"


def test_the_61_user_cannot_guarantee_the_62_users_decision(
    users: Users, stored: Stored, clock: Clock
) -> None:
    answer = _ask(users.api, users.kalbar, RECORD, _guarantee(stored.checked))
    assert answer["data"] == {"recordGuarantee": None}
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "guarantee.decisionId"}


def test_the_61_user_cannot_change_the_62_users_guarantee(
    users: Users, stored: Stored, clock: Clock
) -> None:
    answer = _ask(users.api, users.kalbar, STATUS, {"id": stored.guarantee})
    assert answer["data"] == {"changeGuaranteeStatus": None}
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "guaranteeId"}
    claimed = _ask(users.api, users.kalteng, STATUS, {"id": stored.guarantee})
    assert _data(claimed, "changeGuaranteeStatus") == {"status": "CLAIMED"}


def test_the_61_user_is_not_shown_the_62_users_guarantees_exactly(
    users: Users, stored: Stored
) -> None:
    """Its own guarantees are published exactly to a guarantor, apart from the cell (hidden
    whole: no other guarantee is in it); the 62 user's are not the 61 user's own, and its one
    guarantee in the regency is a cell below the threshold, which the 61 user, holding none of
    its own there, is not shown at all."""
    theirs = _data(_ask(users.api, users.kalbar, FIGURES), "guaranteeFigures")
    own = _data(_ask(users.api, users.kalteng, FIGURES), "guaranteeFigures")
    assert theirs == []
    assert len(own) == 2  # the regency's cell and the total
    assert all((cell["ownCount"], cell["ownAmountSum"]) == (1, "50000000") for cell in own)
    assert all(cell["suppressed"] for cell in own)


@pytest.mark.parametrize(("jurisdiction", "sees"), [("62", True), ("61", False)])
async def test_a_shared_id_is_still_held_to_its_jurisdiction(
    users: Users, stored: Stored, demo_url: str, jurisdiction: str, sees: bool
) -> None:
    """Defence in depth: a principal of 61 under the 62 user's very id, as both users were
    before, is still not shown the decisions and guarantees about businesses in 62."""
    shared = Principal(
        client_id=_client_id(users, users.kalteng),
        org_kind=OrgKind.BUMD,
        jurisdiction=jurisdiction,
        scopes=frozenset(),
    )
    policy = AccessPolicy(shared)
    engine = create_engine(as_service(demo_url), statement_timeout_ms=5_000, pool_size=1)
    try:
        async with engine.begin() as connection:
            decision = await decisions.decision(
                connection, uuid.UUID(stored.guaranteed), visible=policy.own_decisions
            )
            guarantee = await guarantees.guarantee_for_update(
                connection, uuid.UUID(stored.guarantee), policy.own_guarantees
            )
            await connection.rollback()
    finally:
        await engine.dispose()
    assert (decision is not None, guarantee is not None) == (sees, sees)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, CHECKED_ON)


async def test_no_claim_passes_for_another_jurisdictions_principal() -> None:
    """A 61 token whose client claim spells the 62 principal's suffix is still a 61 principal:
    the org kind and jurisdiction end the id, and hold no `@`."""
    issuer = ExternalIssuer(issuer=REALM, jwks_url="https://unused", audience="sinergi")
    claims = user_claims(
        REALM, sub="user-3", azp="portal@bumd:62", org_kind="bumd", jurisdiction="61", roles=[]
    )
    principal = await principal_from_claims(issuer, claims, province_level)
    assert principal.client_id == f"{REALM}#portal@bumd:62@bumd:61"
    assert principal.client_id.rpartition("@")[2] == "bumd:61"


def test_the_owner_sets_an_external_guarantors_equity(users: Users, demo_url: str) -> None:
    """Its gearing limit is checked against the `guarantors` row of its id, which the owner
    sets with the CLI as for a registered client; an id no token of a configured issuer can
    carry, or one of an org kind that issues no guarantees, is refused and nothing stored."""
    kalbar = f"{REALM}#equity-app@bumd:61"
    code, out, err = set_equity(demo_url, users.issuers, kalbar, "2000000000")
    assert (code, out, err) == (0, f"{kalbar}: equity Rp2,000,000,000, limit 20 x equity\n", "")
    refused = {
        f"{REALM}#equity-app@province:62": "a province does not issue guarantees",
        f"{REALM}#equity-app@bumd:ID": "'ID' is not a jurisdiction of a bumd",
        f"{REALM}#equity-app@bank:62": "'bank' is not a valid OrgKind",
        f"{REALM}#equity-app": f"not {REALM}#CLIENT@ORG_KIND:JURISDICTION",  # the older form
        f"{REALM}#@bumd:62": f"not {REALM}#CLIENT@ORG_KIND:JURISDICTION",
        f"{REALM}#{'x' * 200}@bumd:62": "longer than the 200 characters",
    }
    for client_id, reason in refused.items():
        code, out, err = set_equity(demo_url, users.issuers, client_id, "1000000")
        assert (code, out) == (2, ""), err
        assert err.startswith(f"sinergi: {client_id} is not a guarantor (an external principal"), (
            err
        )
        assert reason in err
    # Not of a configured issuer: a registered client's id, of which there is none.
    unknown = "https://other.example.go.id/realms/bumd#portal@bumd:62"
    code, _, err = set_equity(demo_url, users.issuers, unknown, "1000000")
    assert (code, err) == (
        2,
        f"sinergi: {unknown} is not a guarantor (no client): equity is set only for a client"
        " that issues guarantees (guarantees:write)\n",
    )
    stored = "SELECT client_id FROM guarantors WHERE client_id LIKE '%equity-app%'"
    assert [row[0] for row in run(demo_url, stored)] == [kalbar]


def test_a_client_id_longer_than_sinergi_keeps_is_refused_with_the_token(
    users: Users, caplog: pytest.LogCaptureFixture
) -> None:
    """A 180-character `azp` composes an id past the 200 characters a decision keeps of it:
    such a token was accepted, and its first check failed INTERNAL storing the decision."""
    claims = user_claims(
        REALM, sub="user-4", azp="a" * 180, org_kind="bumd", jurisdiction="62", roles=ROLES
    )
    token = users.realm.token(claims)
    with caplog.at_level(logging.INFO, logger="sinergi.auth"):
        response = users.api.post({"query": "{ viewer { clientId } }"}, token)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "data" not in response.json()
    assert any(
        "longer than the 200 Sinergi keeps" in record.getMessage() for record in caplog.records
    )
    fits = {**claims, "azp": "a" * (200 - len(f"{REALM}#@bumd:62"))}
    answer = _ask(users.api, users.realm.token(fits), "{ viewer { clientId } }")
    assert len(_data(answer, "viewer")["clientId"]) == 200


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("azp", "portal\x00"),
        ("azp", "portal\ud800"),
        ("azp", "portal\n62"),
        ("org_name", "Dinas\x00"),
        ("org_name", "Dinas\udfff"),
        ("org_name", "Dinas\x1b[2J"),
        ("org_name", "Dinas \u202eBank"),
        ("azp", "portal\u200b62"),
        ("org_name", "Dinas\u2028Bank"),
    ],
    ids=[
        "azp-nul",
        "azp-surrogate",
        "azp-newline",
        "org-nul",
        "org-surrogate",
        "org-escape",
        "org-bidi-override",
        "azp-zero-width",
        "org-line-separator",
    ],
)
def test_a_claim_no_text_column_stores_is_refused_with_the_token(
    users: Users, clock: Clock, claim: str, value: str
) -> None:
    """A NUL or a lone surrogate in the client id or the organisation reached PostgreSQL, as a
    500 INTERNAL; a control character would be written into the logs and audit entries; and an
    invisible one (a bidirectional override, a zero-width space), which no record's name may
    hold, would hide what a principal's name says or make two look the same."""
    claims = user_claims(
        REALM, sub="user-5", azp="portal", org_kind="bumd", jurisdiction="62", roles=ROLES
    )
    # Signed as JSON escapes it (`\\ud800`): a lone surrogate has no UTF-8 to sign.
    payload = json.dumps({**claims, claim: value}).encode()
    token = jws.serialize_compact({"alg": "ES256", "kid": KID}, payload, users.realm.key)
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    response = users.api.post({"query": CHECK, "variables": {"request": request}}, token)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "data" not in response.json()


async def test_a_token_without_the_configured_client_id_claim_is_refused() -> None:
    """The principal fell back to `sub` whenever the client id claim was missing: with
    `client_id_claim` set to another claim, a token without it was the user's principal, not
    its app's, and each user of the app a principal of its own. Only the default `azp`, which
    a token issued to the user's own session lacks, falls back to `sub`."""
    claims = user_claims(
        REALM, sub="user-6", azp="portal", org_kind="bumd", jurisdiction="62", roles=ROLES
    )
    configured = ExternalIssuer(
        issuer=REALM, jwks_url="https://sso.example.go.id/certs", audience="sinergi",
        client_id_claim="client_id",
    )  # fmt: skip
    with pytest.raises(InvalidToken, match="client_id"):
        await principal_from_claims(configured, claims, province_level)
    default = ExternalIssuer(
        issuer=REALM, jwks_url="https://sso.example.go.id/certs", audience="sinergi"
    )
    without_azp = {name: value for name, value in claims.items() if name != "azp"}
    principal = await principal_from_claims(default, without_azp, province_level)
    assert principal.client_id == f"{REALM}#user-6@bumd:62"
