"""Tokens of this server's clients are bound to the audit key, which the database never holds.

Whoever holds only the service role's database credentials can read the signing key (the
service reads it to sign), and iss and aud are no secret: without the binding they minted a
token for any registered client, and the service itself wrote a genuine, MAC'd audit entry
saying that client read a person's data. The token's seal is an HMAC under a key derived from
the audit key, so a token signed with the key but not sealed with it is refused as one with a
bad signature is."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import asyncpg
from joserfc import jwt
from joserfc.jwk import ECKey

from auth import tokens
from tests.support.clients import registered
from tests.support.databases import as_service
from tests.support.http import Api


async def _as_service(url: str, statement: str, *args: Any) -> Any:
    """One statement's rows, run with the service role's credentials and nothing more."""
    connection = await asyncpg.connect(as_service(url))
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


def _stolen_key(url: str) -> ECKey:
    """The signing key, as the service role reads it (README: the service signs tokens)."""
    [row] = asyncio.run(
        _as_service(
            url,
            "SELECT private_jwk FROM signing_keys WHERE retired_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1",
        )
    )
    jwk = row["private_jwk"]
    return ECKey.import_key(json.loads(jwk) if isinstance(jwk, str) else jwk)


def _owner_query(url: str) -> dict[str, Any]:
    """A read of a Kalimantan Tengah business's owner: personal data, so audited by name."""
    [row] = asyncio.run(
        _as_service(
            url,
            "SELECT m.nib FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
            " WHERE m.province_code = '62' ORDER BY m.id LIMIT 1",
        )
    )
    return {"query": f'{{ msme(nib: "{row["nib"]}") {{ nib owner {{ nik fullName }} }} }}'}


def _entries(url: str, client_id: str) -> int:
    rows = asyncio.run(
        _as_service(url, "SELECT count(*) AS n FROM audit_log WHERE client_id = $1", client_id)
    )
    return int(rows[0]["n"])


def _claims_of(api: Api, client_id: str) -> dict[str, Any]:
    """What an insider puts in a token of `client_id`: iss and aud off any token seen, the
    client's registration (readable with the service's credentials), a fresh jti and times."""
    seen = dict(tokens.decode_segment(api.token("demo-ministry").split(".")[1]))
    now = int(time.time())
    return {
        "iss": seen["iss"],
        "aud": seen["aud"],
        "sub": client_id,
        "client_id": client_id,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_urlsafe(16),
        "scope": "pii:read records:read",
        "jurisdiction": "62",
        "org_kind": "province",
    }


def _signed(key: ECKey, claims: dict[str, Any]) -> str:
    header = {"alg": "ES256", "kid": key.kid, "typ": tokens.TOKEN_TYPE}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def _assert_refused(api: Api, url: str, client_id: str, token: str) -> None:
    response = api.post(_owner_query(url), token)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert _entries(url, client_id) == 0


def test_a_token_minted_with_the_database_credentials_is_refused_and_not_audited(
    api: Api, demo_url: str
) -> None:
    client_id, secret = registered(
        demo_url, "Dinas Framed", purpose="testing", scopes="records:read pii:read"
    )
    forged = _signed(_stolen_key(demo_url), _claims_of(api, client_id))
    _assert_refused(api, demo_url, client_id, forged)
    # The same read with the client's own token is answered, and audited in its name.
    issued = api.token_response(client_id, secret).json()["access_token"]
    answered = api.post(_owner_query(demo_url), issued)
    assert answered.status_code == 200, answered.text
    assert _entries(demo_url, client_id) > 0


def test_a_token_sealed_under_another_audit_key_is_refused(api: Api, demo_url: str) -> None:
    client_id, _ = registered(
        demo_url, "Dinas Resealed", purpose="testing", scopes="records:read pii:read"
    )
    claims = _claims_of(api, client_id)
    forged = tokens.issue(
        _stolen_key(demo_url),
        seal_key=tokens.seal_key(secrets.token_bytes(32)),
        issuer=claims["iss"],
        audience=claims["aud"],
        client_id=client_id,
        scopes=frozenset(claims["scope"].split()),
        jurisdiction="62",
        org_kind="province",
        lifetime=600,
    )
    _assert_refused(api, demo_url, client_id, forged)


def test_a_genuine_seal_carried_onto_other_claims_is_refused(api: Api, demo_url: str) -> None:
    """The insider holds a token the client asked for without `pii:read` (a seal made with
    the audit key) and the signing key: re-signing its claims with the `pii:read` the client is
    granted keeps the seal, which no longer matches them."""
    client_id, secret = registered(
        demo_url, "Dinas Widened", purpose="testing", scopes="records:read pii:read"
    )
    issued = api.token_response(client_id, secret, scope="records:read").json()["access_token"]
    claims = dict(tokens.decode_segment(issued.split(".")[1]))
    widened = {**claims, "scope": "pii:read records:read"}
    _assert_refused(api, demo_url, client_id, _signed(_stolen_key(demo_url), widened))
