"""An SSO trusted for one province's agencies (a Keycloak of Kalimantan Tengah's) signed tokens
claiming any org kind and any jurisdiction, and Sinergi believed them: whoever took over that
SSO, or misconfigured a mapper, spoke for a ministry or for another province. An issuer's
`org_kinds` and `jurisdictions` cap what its tokens may claim; outside them a token is 401, and
an id no token of it could now carry is refused where an operator names one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sinergi.settings import Settings, SettingsError
from tests.support.cli import sinergi
from tests.support.http import Api, served
from tests.support.sso import Realm, serving_realm, user_claims

PROVINCIAL = "https://sso.kalteng.example.go.id/realms/dinas"
"""Capped to the province's agencies and BUMDs in 62, and to Kota Pontianak (61.71)."""
NATIONAL = "https://sso.example.go.id/realms/kemenkop"
"""Capped to the nation, "ID": any jurisdiction lies within it."""
ORG_KINDS = ["province", "regency", "bumd"]
JURISDICTIONS = ["62", "61.71"]
ROLES = ["aggregates:read"]


@dataclass(frozen=True)
class Capped:
    api: Api
    realm: Realm
    issuers: str
    """SINERGI_EXTERNAL_ISSUERS, as the server and the CLI are configured."""


@pytest.fixture(scope="module")
def capped(demo_url: str) -> Iterator[Capped]:
    with serving_realm() as realm:
        common = {"jwks_url": realm.jwks_url, "audience": "sinergi"}
        issuers = json.dumps(
            [
                {
                    "issuer": PROVINCIAL,
                    **common,
                    "scope_claim": "realm_access.roles",
                    "org_kinds": ORG_KINDS,
                    "jurisdictions": JURISDICTIONS,
                },
                {"issuer": NATIONAL, **common, "jurisdictions": ["ID"]},
            ]
        )
        settings = Settings(external_issuers=issuers, rate_limit=1_000_000)
        with served(demo_url, settings) as api:
            yield Capped(api, realm, issuers)


def _token(capped: Capped, issuer: str, org_kind: str, jurisdiction: str) -> str:
    claims = user_claims(
        issuer, sub="u-caps", azp="caps-app", org_kind=org_kind, jurisdiction=jurisdiction,
        roles=ROLES,
    )  # fmt: skip
    return capped.realm.token(claims)


@pytest.mark.parametrize(
    ("issuer", "org_kind", "jurisdiction"),
    [
        (PROVINCIAL, "province", "62"),
        (PROVINCIAL, "regency", "62.71"),  # within 62
        (PROVINCIAL, "bumd", "62"),
        (PROVINCIAL, "bumd", "61.71"),
        (NATIONAL, "ministry", "ID"),
        (NATIONAL, "province", "61"),  # no org kind capped; 61 lies within the nation
    ],
)
def test_a_token_within_its_issuers_caps_is_admitted(
    capped: Capped, issuer: str, org_kind: str, jurisdiction: str
) -> None:
    token = _token(capped, issuer, org_kind, jurisdiction)
    response = capped.api.post({"query": "{ viewer { clientId jurisdiction } }"}, token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"] == {
        "clientId": f"{issuer}#caps-app@{org_kind}:{jurisdiction}",
        "jurisdiction": jurisdiction,
    }


KINDS = f"org_kinds of {PROVINCIAL} (province, regency, bumd)"
PLACES = f"jurisdictions of {PROVINCIAL} (62, 61.71)"
OUTSIDE = {
    ("ministry", "ID"): f"org kind 'ministry' is not among the {KINDS}",
    ("custodian", "ID"): f"org kind 'custodian' is not among the {KINDS}",
    ("province", "61"): f"jurisdiction '61' lies within none of the {PLACES}",
    ("regency", "61.72"): f"jurisdiction '61.72' lies within none of the {PLACES}",
    ("bumd", "61"): f"jurisdiction '61' lies within none of the {PLACES}",  # above 61.71
}


@pytest.mark.parametrize(("org_kind", "jurisdiction"), list(OUTSIDE))
def test_a_token_outside_its_issuers_caps_is_refused(
    capped: Capped, caplog: pytest.LogCaptureFixture, org_kind: str, jurisdiction: str
) -> None:
    token = _token(capped, PROVINCIAL, org_kind, jurisdiction)
    with caplog.at_level(logging.INFO, logger="sinergi.auth"):
        response = capped.api.post({"query": "{ viewer { clientId } }"}, token)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "data" not in response.json()
    reason = f"refused bearer token: external claims: {OUTSIDE[org_kind, jurisdiction]}"
    assert reason in [record.getMessage() for record in caplog.records]


def _outside_id(org_kind: str, jurisdiction: str) -> str:
    return f"{PROVINCIAL}#caps-app@{org_kind}:{jurisdiction}"


@pytest.mark.parametrize(("org_kind", "jurisdiction"), list(OUTSIDE))
def test_documents_are_not_trusted_for_an_id_outside_the_caps(
    capped: Capped, demo_url: str, tmp_path: Path, org_kind: str, jurisdiction: str
) -> None:
    """`clients trust` and SINERGI_TRUSTED_DOCUMENTS took such an id, for whom no token of the
    issuer would now be admitted: documents held for nobody."""
    file = tmp_path / "me.graphql"
    file.write_text("query Me { viewer { clientId } }")
    client_id = _outside_id(org_kind, jurisdiction)
    env = {"SINERGI_EXTERNAL_ISSUERS": capped.issuers}
    code, out, err = sinergi(demo_url, "clients", "trust", client_id, str(file), env=env)
    assert (code, out) == (2, "")
    reason = OUTSIDE[org_kind, jurisdiction]
    assert err == f"sinergi: client_id: {client_id!r} is no SSO principal's: {reason}\n"
    with pytest.raises(SettingsError, match="SINERGI_TRUSTED_DOCUMENTS") as refused:
        Settings.from_env({**env, "SINERGI_TRUSTED_DOCUMENTS": client_id})
    assert str(refused.value).endswith(f"({client_id!r} is no SSO principal's: {reason})")
    within = f"{PROVINCIAL}#caps-app@regency:62.71"
    assert Settings.from_env({**env, "SINERGI_TRUSTED_DOCUMENTS": within}).trusted_documents


def test_an_equity_is_not_set_for_a_guarantor_outside_the_caps(
    capped: Capped, demo_url: str
) -> None:
    env = {"SINERGI_EXTERNAL_ISSUERS": capped.issuers}
    for jurisdiction in ("61", "61.72"):
        client_id = _outside_id("bumd", jurisdiction)
        code, out, err = sinergi(
            demo_url, "guarantors", "set-equity", client_id, "1000000", env=env
        )
        assert (code, out) == (2, "")
        assert err == (
            f"sinergi: {client_id} is not a guarantor (an external principal's id: jurisdiction"
            f" {jurisdiction!r} lies within none of the {PLACES})\n"
        )
    within = f"{PROVINCIAL}#caps-app@bumd:61.71"
    code, out, err = sinergi(demo_url, "guarantors", "set-equity", within, "1000000", env=env)
    assert (code, err) == (0, ""), err
