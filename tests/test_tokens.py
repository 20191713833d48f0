"""Tokens through HTTP: the token endpoint's RFC 6749 answers and every way a bearer token fails."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient

from auth import keys, tokens
from auth.external import ExternalKeys, parse_external_issuers
from auth.service import AuthService
from db.engine import create_engine
from db.models import SIGNING_KEYS
from sinergi.app import create_app
from sinergi.demo_mode import DEMO_SECRET
from sinergi.settings import Settings
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.http import Api
from tests.support.minted import minted, seal_key
from tests.support.sso import province_level, serving_realm, user_claims
from tests.support.statements import recorded_statements

QUERY = {"query": "{ viewer { clientId } }"}
ISSUER = Settings().issuer
AUDIENCE = Settings().audience


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_key(url: str) -> ECKey:
    async def load() -> ECKey:
        engine = create_engine(url, statement_timeout_ms=5_000, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await keys.signing_key(connection)
        finally:
            await engine.dispose()

    return asyncio.run(load())


def _token(key: ECKey, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "client_id": "demo-province-62",
        "scopes": frozenset({"records:read"}),
        "jurisdiction": "62",
        "org_kind": "province",
        "lifetime": 900,
    }
    return minted(key, **{**arguments, **overrides})


def _assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def _forged(real: str, header: dict[str, Any], signature: bytes = b"") -> str:
    _, payload, _ = real.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{_b64(signature)}"


def test_a_valid_token_is_accepted(api: Api, demo_url: str) -> None:
    response = api.post(QUERY, _token(_signing_key(demo_url)))
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"clientId": "demo-province-62"}}}


def test_a_token_issued_to_write_records_without_reading_them_writes_nothing(
    api: Api, demo_url: str
) -> None:
    """Signed with the server's own key, as a token issued before writes needed their read (or
    to a client registered before) was: the scope it claims is not held."""
    token = _token(_signing_key(demo_url), scopes=frozenset({"records:write", "aggregates:read"}))
    write = 'mutation { updateMsme(id: "2", version: 1, changes: {}) { name } }'
    answer = api.post({"query": write}, token).json()
    assert answer["data"] == {"updateMsme": None}
    assert answer["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "requiredScopes": ["records:write"],
    }
    viewer = api.post({"query": "{ viewer { scopes } }"}, token).json()
    assert viewer == {"data": {"viewer": {"scopes": ["aggregates:read"]}}}


def test_a_checked_token_is_remembered_until_it_expires_and_only_byte_for_byte() -> None:
    remembered = tokens.VerifiedTokens(lifetime=900, capacity=2)
    issued = 1_000_000.0
    remembered.add("a", {"iat": issued, "exp": issued + 900}, kid="k")
    claims = remembered.get("a", now=issued + 900 + tokens.LEEWAY_SECONDS)
    assert claims == {"iat": issued, "exp": issued + 900}
    assert remembered.get("a", now=issued + 901 + tokens.LEEWAY_SECONDS) is None
    assert remembered.get("a ", now=issued) is None
    for token in ("b", "c", "d"):
        remembered.add(token, {"iat": issued, "exp": issued + 900}, kid="k")
    assert [remembered.get(token, now=issued) is not None for token in "bcd"] == [
        False,
        True,
        True,
    ]


def test_a_known_clients_token_check_runs_no_statement(api: Api, demo_url: str) -> None:
    """The registration read for the first request is held (auth/registry.py); the rate limit
    counts in memory (sinergi/rate_limit.py)."""
    token = _token(_signing_key(demo_url))
    assert api.post({"query": "{ __typename }"}, token).status_code == 200
    with recorded_statements() as statements:
        for _ in range(5):
            response = api.post({"query": "{ __typename }"}, token)
            assert response.json() == {"data": {"__typename": "Query"}}
    assert statements == []


def test_a_tampered_copy_of_an_accepted_token_is_still_refused(api: Api, demo_url: str) -> None:
    real = _token(_signing_key(demo_url))
    assert api.post(QUERY, real).status_code == 200
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
    claims["jurisdiction"] = "ID"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _assert_refused(
        api.client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {forged}"})
    )
    assert api.post(QUERY, real).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "not bearer",
        "garbage",
        "expired",
        "not yet valid",
        "wrong issuer",
        "wrong audience",
        "unknown kid",
        "tampered payload",
        "alg none",
        "HS256 with the public key",
        "unconfigured issuer",
        "deeply nested header",
        "deeply nested claims",
    ],
)
def test_bad_tokens_get_401_and_no_data(api: Api, demo_url: str, case: str) -> None:
    key = _signing_key(demo_url)
    real = _token(key)
    now = time.time()
    public_pem = ECKey.import_key(key.as_dict(private=False)).as_pem(private=False)
    stranger = ECKey.generate_key("P-256", parameters={"kid": "stranger", "alg": "ES256"})
    headers: dict[str, str] = {}
    match case:
        case "no token":
            pass
        case "not bearer":
            headers["Authorization"] = "Basic ZGVtbzpkZW1v"
        case "garbage":
            headers["Authorization"] = "Bearer not.a.token"
        case "expired":
            headers["Authorization"] = "Bearer " + _token(key, now=now - 3600)
        case "not yet valid":
            headers["Authorization"] = "Bearer " + _token(key, now=now + 3600)
        case "wrong issuer":
            headers["Authorization"] = "Bearer " + _token(key, issuer="https://elsewhere.example")
        case "wrong audience":
            headers["Authorization"] = "Bearer " + _token(key, audience="another-api")
        case "unknown kid":
            headers["Authorization"] = "Bearer " + _token(stranger)
        case "tampered payload":
            header, payload, signature = real.split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
            claims["jurisdiction"] = "ID"
            forged = _b64(json.dumps(claims).encode())
            headers["Authorization"] = f"Bearer {header}.{forged}.{signature}"
        case "alg none":
            forged = _forged(real, {"alg": "none", "typ": "at+jwt", "kid": key.kid})
            headers["Authorization"] = "Bearer " + forged
        case "HS256 with the public key":
            header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
            unsigned = _forged(real, header).rsplit(".", 1)[0]
            mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
            headers["Authorization"] = f"Bearer {unsigned}.{_b64(mac)}"
        case "unconfigured issuer":
            token = _token(stranger, issuer="https://sso.example.go.id/realms/other")
            headers["Authorization"] = "Bearer " + token
        case "deeply nested header":  # json.loads raises RecursionError, not ValueError
            header, payload, signature = real.split(".")
            nested = _b64(b"[" * 100_000 + b"]" * 100_000)
            headers["Authorization"] = f"Bearer {nested}.{payload}.{signature}"
        case "deeply nested claims":  # read unverified, for the issuer whose keys to use
            header, payload, signature = real.split(".")
            nested = _b64(b"[" * 100_000 + b"]" * 100_000)
            headers["Authorization"] = f"Bearer {header}.{nested}.{signature}"
    _assert_refused(api.client.post("/graphql", json=QUERY, headers=headers))


def test_a_revoked_clients_token_stops_working_at_once(api: Api, demo_url: str) -> None:
    created = _cli_json(
        demo_url,
        [
            "clients",
            "create",
            "--name",
            "Dinas Uji",
            "--org-kind",
            "province",
            "--jurisdiction",
            "62",
            "--purpose",
            "testing",
        ],
    )
    token = api.token_response(created["client_id"], created["client_secret"]).json()
    response = api.post(QUERY, token["access_token"])
    assert response.json()["data"]["viewer"]["clientId"] == created["client_id"]
    assert _cli(demo_url, ["clients", "revoke", created["client_id"]]) == 0
    _assert_refused(api.post(QUERY, token["access_token"]))
    refused = api.token_response(created["client_id"], created["client_secret"])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


def _cli(url: str, argv: list[str]) -> int:
    return sinergi(url, *argv)[0]


def _cli_json(url: str, argv: list[str]) -> Any:
    code, out, err = sinergi(url, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_clients_are_managed_from_the_command_line(api: Api, demo_url: str) -> None:
    created = _cli_json(
        demo_url,
        [
            "clients",
            "create",
            "--name",
            "Bappenas",
            "--org-kind",
            "ministry",
            "--jurisdiction",
            "ID",
            "--purpose",
            "national planning figures",
        ],
    )
    assert created["scopes"] == ["aggregates:read", "targets:read"]
    listed = _cli_json(demo_url, ["clients", "list"])
    assert created["client_id"] in {client["client_id"] for client in listed}
    assert all("secret" not in json.dumps(client) for client in listed)
    shown = _cli_json(demo_url, ["clients", "show", created["client_id"]])
    assert "never records" in shown["sees"]

    rotated = _cli_json(demo_url, ["clients", "rotate", created["client_id"]])
    assert api.token_response(created["client_id"], created["client_secret"]).status_code == 401
    assert api.token_response(created["client_id"], rotated["client_secret"]).status_code == 200


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--org-kind", "ministry", "--jurisdiction", "62"],
            "jurisdiction: a ministry is national",
        ),
        (
            ["--org-kind", "province", "--jurisdiction", "99"],
            "jurisdiction: '99' is not a province",
        ),
        (
            ["--org-kind", "bumd", "--jurisdiction", "62", "--scopes", "records:read"],
            "scopes: records:read not allowed for org kind bumd",
        ),
        (
            ["--org-kind", "province", "--jurisdiction", "62", "--scopes", "records:write"],
            "scopes: records:write needs records:read as well",
        ),
        # Registered a client none of whose tokens could do anything.
        (
            ["--org-kind", "province", "--jurisdiction", "62", "--scopes", ""],
            "scopes: none given (leave them out for the org kind's bundle)",
        ),
        (
            ["--org-kind", "province", "--jurisdiction", "62", "--scopes", " "],
            "scopes: none given (leave them out for the org kind's bundle)",
        ),
    ],
)
def test_the_cli_refuses_a_bad_client_naming_the_field(
    demo_url: str, argv: list[str], message: str
) -> None:
    code, out, err = sinergi(
        demo_url, "clients", "create", "--name", "X", "--purpose", "testing", *argv
    )
    assert code == 2
    assert out == ""
    assert message in err


def test_what_a_client_sees_is_told_from_its_granted_scopes(demo_url: str) -> None:
    """`sees` was the org kind's bundle: a province given records:read alone was said to see
    figures, which it may not read."""
    argv = ["clients", "create", "--name", "Dinas", "--org-kind", "province"]
    argv += ["--jurisdiction", "62", "--purpose", "testing", "--scopes"]
    narrow = _cli_json(demo_url, [*argv, "records:read"])
    assert narrow["sees"] == "records in its jurisdiction without personal data"
    wide = _cli_json(demo_url, [*argv, "records:read pii:read aggregates:read"])
    assert wide["sees"] == (
        "records in its jurisdiction with the owners' personal data;"
        " aggregate figures for any region"
    )


def test_the_token_endpoint_answers_per_rfc_6749(api: Api) -> None:
    good = api.token_response("demo-province-62")
    assert good.status_code == 200
    assert good.headers["cache-control"] == "no-store"
    body = good.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    header = tokens.unverified_header(body["access_token"])
    assert (header["alg"], header["typ"]) == ("ES256", "at+jwt")

    wrong_secret = api.token_response("demo-province-62", secret="wrong")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert wrong_secret.headers["www-authenticate"].startswith("Basic")
    unknown = api.token_response("nobody")
    assert unknown.json() == wrong_secret.json()

    too_much = api.token_response("demo-ministry", scope="records:read")
    assert (too_much.status_code, too_much.json()["error"]) == (400, "invalid_scope")
    subset = api.token_response("demo-province-62", scope="aggregates:read")
    assert subset.json()["scope"] == "aggregates:read"
    both = api.token_response("demo-province-62", scope="aggregates:read  records:read")
    assert both.json()["scope"] == "aggregates:read records:read", both.text
    for separator in ("\t", "\u00a0", "\n"):  # RFC 6749 §3.3 separates scopes by spaces only
        blurred = api.token_response(
            "demo-province-62", scope=f"aggregates:read{separator}records:read"
        )
        assert (blurred.status_code, blurred.json()["error"]) == (400, "invalid_scope"), separator
        trailing = api.token_response("demo-province-62", scope=f"aggregates:read{separator}")
        assert (trailing.status_code, trailing.json()["error"]) == (400, "invalid_scope")
    for empty in ("", " "):  # an empty scope is no request: the client's scopes, as omitted
        omitted = api.token_response("demo-province-62", scope=empty)
        assert omitted.status_code == 200, omitted.text
        assert omitted.json()["scope"] == api.token_response("demo-province-62").json()["scope"]
        assert omitted.json()["scope"] != ""

    client = api.client
    posted = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-ministry",
            "client_secret": DEMO_SECRET,
        },
    )
    assert posted.status_code == 200
    grant = client.post("/oauth/token", data={"grant_type": "password"}, auth=("a", "b"))
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    both = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": DEMO_SECRET},
        auth=("demo-ministry", DEMO_SECRET),
    )
    assert both.json()["error"] == "invalid_request"
    as_json = client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    form = "grant_type=client_credentials"
    credentials = ("demo-ministry", DEMO_SECRET)
    for content_type, status in (
        ("application/x-www-form-urlencoded-evil", 400),  # only a prefix of the form's type
        ("Application/X-WWW-Form-Urlencoded; charset=utf-8", 200),  # media types ignore case
    ):
        answer = client.post(
            "/oauth/token", content=form, headers={"Content-Type": content_type}, auth=credentials
        )
        assert answer.status_code == status, (content_type, answer.text)
        assert status == 200 or answer.json()["error"] == "invalid_request", answer.text
    anonymous = client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    "form",
    [
        {"client_id": "demo-ministry", "client_secret": "wrong"},
        {"client_id": "nobody", "client_secret": DEMO_SECRET},
        {"client_id": "x" * 65, "client_secret": DEMO_SECRET},
        {"client_id": "demo-ministry"},
        {},
    ],
    ids=["wrong-secret", "unknown-id", "overlong-id", "no-secret", "no-credentials"],
)
def test_every_invalid_client_401_carries_a_basic_challenge(api: Api, form: dict[str, str]) -> None:
    """RFC 9110 §15.5.2: a 401 MUST carry WWW-Authenticate. Only a request that had sent Basic
    credentials got one: a client_secret_post client's wrong secret, or a request with no
    credentials at all, was 401 with none."""
    response = api.client.post("/oauth/token", data={"grant_type": "client_credentials", **form})
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert response.headers["www-authenticate"] == 'Basic realm="sinergi"'


def test_a_body_client_id_other_than_the_basic_one_is_refused(api: Api) -> None:
    """With Basic credentials, a client_id in the form naming another client was ignored: the
    token was the Basic client's, and the caller that asked for the other never learnt it. It
    is now refused as the conflict it is; the same id repeated still gets its token."""
    form = {"grant_type": "client_credentials", "client_id": "demo-province-62"}
    conflicting = api.client.post("/oauth/token", data=form, auth=("demo-ministry", DEMO_SECRET))
    assert (conflicting.status_code, conflicting.json()["error"]) == (400, "invalid_request")
    assert "client_id" in conflicting.json()["error_description"]
    repeated = {**form, "client_id": "demo-ministry"}
    same = api.client.post("/oauth/token", data=repeated, auth=("demo-ministry", DEMO_SECRET))
    assert same.status_code == 200, same.text


def test_a_client_id_holding_a_nul_is_a_malformed_request(api: Api) -> None:
    """It was 500 INTERNAL: PostgreSQL refused to note the failed attempt under that id."""
    nul = "demo-ministry\x00"
    form = {"grant_type": "client_credentials", "client_id": nul, "client_secret": DEMO_SECRET}
    for response in (
        api.client.post("/oauth/token", data=form),
        api.token_response(nul, secret="wrong"),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "credentials",
    [b"\xe9\xe9", base64.b64encode(b"demo-ministry:\xe9"), b"!!", base64.b64encode(b"no-colon")],
    ids=["not-ascii", "not-utf-8", "not-base64", "no-colon"],
)
def test_malformed_basic_credentials_are_invalid_client(api: Api, credentials: bytes) -> None:
    """RFC 6749 §5.2. Basic credentials that were not ASCII were 500 INTERNAL: base64 refused
    them with a ValueError the endpoint did not expect."""
    response = api.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": b"Basic " + credentials},
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def test_the_token_endpoint_refuses_a_large_body_without_reading_it(api: Api) -> None:
    """The attack: anyone may post to the token endpoint, and a body of any size was read whole
    into memory before the form was looked at (150 MB took 400 MB). Declared or streamed, a
    body past a few kilobytes is refused as an RFC 6749 error, with no SQL run."""
    form = "grant_type=client_credentials&pad=" + "x" * 100_000

    def streamed() -> Iterator[bytes]:  # chunked: no Content-Length to refuse it by
        yield form.encode()

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    credentials = ("demo-province-62", DEMO_SECRET)
    with recorded_statements() as statements:
        answers = [
            api.client.post("/oauth/token", content=body, headers=headers, auth=credentials)
            for body in (form, streamed())
        ]
    for response in answers:
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "invalid_request"
        assert response.headers["cache-control"] == "no-store"
    assert statements == []


def test_metadata_and_keys_are_published(api: Api) -> None:
    metadata = api.client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    # Clients authenticate with a secret only: RFC 8414 advertises signing algorithms for the
    # JWT methods (private_key_jwt, client_secret_jwt), so the field is left out.
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert "token_endpoint_auth_signing_alg_values_supported" not in metadata
    # REQUIRED by RFC 8414, and non-empty by its validators, though no authorization endpoint
    # serves a response type: kept as published, and said so (docs/contract.md).
    assert "authorization_endpoint" not in metadata
    assert metadata["response_types_supported"] == ["token"]
    published = api.client.get("/.well-known/jwks.json").json()["keys"]
    assert published
    assert all("d" not in key for key in published)
    assert {key["alg"] for key in published} == {"ES256"}


async def test_workers_starting_together_on_a_new_database_make_one_signing_key(
    fresh_url: str,
) -> None:
    """Each worker makes the signing key at start-up if there is none. Two that looked at once
    each made one, and a worker that had loaded its keys before the other's was committed
    refused the tokens signed with it."""
    engine = create_engine(fresh_url, statement_timeout_ms=10_000)

    async def start_up() -> None:
        async with engine.begin() as connection:
            await keys.ensure_signing_key(connection)

    try:
        async with engine.begin() as first:
            await keys.ensure_signing_key(first)
            second = asyncio.create_task(start_up())
            await asyncio.sleep(0.5)  # the second looks while the first's key is uncommitted
        await second
        async with engine.connect() as connection:
            active = await connection.execute(
                select(func.count()).where(SIGNING_KEYS.c.retired_at.is_(None))
            )
            assert active.scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_key_published_moments_after_start_up_is_accepted(demo_url: str, api: Api) -> None:
    """Another process rotates the key just after this one loaded its keys: a token signed
    with the new key waits for the next reload rather than being refused. (`api` registers
    the demo clients.)"""
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
    auth = _auth_service(engine)
    try:
        await auth.startup()
        async with engine.begin() as elsewhere:
            await keys.rotate(elsewhere)
        token = await auth.mint_for_client("demo-province-62", DEMO_SECRET, address="127.0.0.1")
        admitted = await auth.authenticate(token)
        assert admitted.principal.client_id == "demo-province-62"
    finally:
        await engine.dispose()


async def test_a_flood_of_unknown_kids_reads_the_keys_once_a_second(
    demo_url: str, api: Api
) -> None:
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
    auth = _auth_service(engine)
    real = api.token("demo-province-62")
    forged = [_forged(real, {"alg": "ES256", "typ": "at+jwt", "kid": f"k{n}"}) for n in range(20)]
    try:
        await auth.startup()
        with recorded_statements(engine) as statements:
            refusals = await asyncio.gather(
                *(auth.authenticate(token) for token in forged),
                return_exceptions=True,
            )
        assert all(isinstance(refusal, tokens.InvalidToken) for refusal in refusals)
        assert sum("signing_keys" in statement for statement in statements) == 1
    finally:
        await engine.dispose()


def _auth_service(engine: AsyncEngine) -> AuthService:
    return AuthService(
        engine,
        token_seal_key=seal_key(),
        issuer=ISSUER,
        audience=AUDIENCE,
        token_lifetime_seconds=600,
        failure_limits=Settings().failure_limits,
    )


def test_rotating_the_key_keeps_live_tokens_valid(api: Api, demo_url: str) -> None:
    before = api.token_response("demo-ministry").json()["access_token"]
    assert _cli(demo_url, ["keys", "rotate"]) == 0
    after = api.token_response("demo-ministry").json()["access_token"]
    old_kid = tokens.unverified_header(before)["kid"]
    new_kid = tokens.unverified_header(after)["kid"]
    assert old_kid != new_kid
    for token in (before, after):
        assert api.post(QUERY, token).status_code == 200
    kids = {key["kid"] for key in api.client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= kids


@pytest.fixture(scope="module")
def sso_key() -> Iterator[tuple[ECKey, str]]:
    """A stand-in for a Keycloak realm: its key, and its JWKS served over real HTTP."""
    with serving_realm() as realm:
        yield realm.key, realm.jwks_url


def _sso_claims(
    realm: str, azp: str, org_kind: str, jurisdiction: str, roles: list[str]
) -> dict[str, Any]:
    """What a Keycloak realm puts in an access token for an app of an organisation."""
    return user_claims(
        realm, sub="user-1", azp=azp, org_kind=org_kind, jurisdiction=jurisdiction, roles=roles
    )


def test_tokens_of_a_configured_external_issuer_are_mapped(
    demo_url: str, sso_key: tuple[ECKey, str]
) -> None:
    key, jwks_url = sso_key
    realm = "https://sso.example.go.id/realms/kemenkop"
    configured = [
        {
            "issuer": realm,
            "jwks_url": jwks_url,
            "audience": "sinergi",
            "scope_claim": "realm_access.roles",
            "scope_map": {"sinergi-figures": "aggregates:read"},
        }
    ]
    settings = Settings(external_issuers=json.dumps(configured), rate_limit=1_000_000)
    roles = ["sinergi-figures", "records:read", "offline_access"]
    claims = _sso_claims(realm, "kemenkop-dashboard", "ministry", "ID", roles)
    token = jwt.encode({"alg": "ES256", "kid": "realm-1"}, claims, key)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        response = client.post(
            "/graphql",
            json={"query": "{ viewer { clientId orgKind scopes } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["viewer"] == {
            "clientId": f"{realm}#kemenkop-dashboard@ministry:ID",
            "orgKind": "ministry",
            "scopes": ["aggregates:read"],  # records:read is beyond a ministry's bundle
        }
        stranger = ECKey.generate_key("P-256", parameters={"kid": "realm-1", "alg": "ES256"})
        forged = jwt.encode({"alg": "ES256", "kid": "realm-1"}, claims, stranger)
        _assert_refused(
            client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {forged}"})
        )


REALM = "https://sso.example.go.id/realms/dinas"


@pytest.fixture(scope="module")
def sso_api(demo_url: str, sso_key: tuple[ECKey, str]) -> Iterator[TestClient]:
    """The app trusting a provincial SSO that maps one role to pii:read."""
    configured = [
        {
            "issuer": REALM,
            "jwks_url": sso_key[1],
            "audience": "sinergi",
            "scope_claim": "realm_access.roles",
            "scope_map": {"sinergi-records": "records:read", "sinergi-pii": "pii:read"},
        }
    ]
    settings = Settings(external_issuers=json.dumps(configured), rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        yield client


def _sso_token(key: ECKey, org_kind: str, jurisdiction: str, roles: list[str]) -> str:
    claims = _sso_claims(REALM, "dinas-app", org_kind, jurisdiction, roles)
    return jwt.encode({"alg": "ES256", "kid": "realm-1"}, claims, key)


@pytest.mark.parametrize(
    ("org_kind", "jurisdiction"),
    [
        ("province", "ID"),  # every province's records
        ("regency", "62"),  # a whole province for a regency
        ("bumd", "ID"),
        ("province", "62.71"),
        ("province", "62.71.01"),
        ("province", "6x"),
        ("regency", "62.99"),  # shaped as a regency's code, but no regency has it
    ],
)
def test_an_external_token_claiming_a_jurisdiction_beyond_its_org_kind_is_refused(
    sso_api: TestClient, sso_key: tuple[ECKey, str], org_kind: str, jurisdiction: str
) -> None:
    token = _sso_token(sso_key[0], org_kind, jurisdiction, ["sinergi-records"])
    _assert_refused(
        sso_api.post(
            "/graphql",
            json={"query": "{ msmes(first: 1) { totalCount } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    )


@pytest.mark.parametrize(
    ("roles", "scopes"),
    [
        (["sinergi-records", "pii:read"], ["records:read"]),  # a role of the user's own name
        (["sinergi-records", "sinergi-pii"], ["pii:read", "records:read"]),  # the operator's map
    ],
)
def test_an_external_token_holds_pii_read_only_through_a_mapped_role(
    sso_api: TestClient, sso_key: tuple[ECKey, str], roles: list[str], scopes: list[str]
) -> None:
    token = _sso_token(sso_key[0], "province", "62", roles)
    response = sso_api.post(
        "/graphql",
        json={"query": "{ viewer { jurisdiction scopes } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"] == {"jurisdiction": "62", "scopes": scopes}


@pytest.mark.parametrize(
    ("kind", "admitted"), [("Bearer", True), ("ID", False), ("Refresh", False)]
)
def test_an_external_token_other_than_an_access_token_is_refused(
    sso_api: TestClient, sso_key: tuple[ECKey, str], kind: str, admitted: bool
) -> None:
    """An ID token Keycloak issued to an app whose client id is Sinergi's audience: signed by the
    realm, for that audience, in date, but for telling the app who logged in, not for the API."""
    claims = {**_sso_claims(REALM, "dinas-app", "province", "62", ["sinergi-records"]), "typ": kind}
    token = jwt.encode({"alg": "ES256", "kid": "realm-1"}, claims, sso_key[0])
    _assert_admitted_to_62(sso_api, token, admitted)


@pytest.mark.parametrize(
    ("roles", "scopes"),
    [
        (["records:write"], []),
        (["records:write", "aggregates:read"], ["aggregates:read"]),
        (["sinergi-records", "records:write"], ["records:read", "records:write"]),
    ],
)
def test_an_external_token_writes_records_only_if_it_reads_them(
    sso_api: TestClient, sso_key: tuple[ECKey, str], roles: list[str], scopes: list[str]
) -> None:
    """A write answers with the record it wrote: an SSO role to write without one to read
    would read the jurisdiction through writes."""
    token = _sso_token(sso_key[0], "province", "62", roles)
    response = sso_api.post(
        "/graphql",
        json={"query": "{ viewer { scopes } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["viewer"] == {"scopes": scopes}


@pytest.mark.parametrize(
    ("valid_for", "issued", "admitted"),
    [
        (3600, True, True),
        (10 * 365 * 86400, True, False),  # signed with a leaked key, say
        (3600 + tokens.LEEWAY_SECONDS + 1, True, False),
        (300, False, True),  # no iat: valid for no longer than that from now
        (10 * 365 * 86400, False, False),
    ],
)
def test_an_external_token_valid_for_longer_than_its_issuers_maximum_is_refused(
    sso_api: TestClient, sso_key: tuple[ECKey, str], valid_for: int, issued: bool, admitted: bool
) -> None:
    """An issuer configured without `max_lifetime` may issue tokens valid for an hour."""
    now = int(time.time())
    claims = _sso_claims(REALM, "dinas-app", "province", "62", ["sinergi-records"])
    claims = {**claims, "iat": now, "exp": now + valid_for}
    if not issued:
        del claims["iat"]
    token = jwt.encode({"alg": "ES256", "kid": "realm-1"}, claims, sso_key[0])
    _assert_admitted_to_62(sso_api, token, admitted)


async def test_an_external_issuers_maximum_lifetime_is_configured_per_issuer(
    sso_key: tuple[ECKey, str],
) -> None:
    key, jwks_url = sso_key
    entry = {"issuer": REALM, "jwks_url": jwks_url, "audience": "sinergi", "max_lifetime": 86400}
    issuer = parse_external_issuers(json.dumps([entry]))[REALM]
    now = int(time.time())
    day = {**_sso_claims(REALM, "dinas-app", "province", "62", []), "exp": now + 86400}
    token = jwt.encode({"alg": "ES256", "kid": "realm-1"}, day, key)
    verified = await ExternalKeys().verify(issuer, token, "realm-1", province_level)
    assert verified.jurisdiction == "62"
    longer = jwt.encode({"alg": "ES256", "kid": "realm-1"}, {**day, "exp": now + 86400 * 2}, key)
    with pytest.raises(tokens.InvalidToken, match="longer than"):
        await ExternalKeys().verify(issuer, longer, "realm-1", province_level)
    for wrong in ("1h", 0, True):
        with pytest.raises(ValueError, match="max_lifetime"):
            parse_external_issuers(json.dumps([{**entry, "max_lifetime": wrong}]))


def _assert_admitted_to_62(sso_api: TestClient, token: str, admitted: bool) -> None:
    """The token reads its viewer's jurisdiction, 62, or is refused as a bad token is."""
    response = sso_api.post(
        "/graphql",
        json={"query": "{ viewer { jurisdiction } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    if admitted:
        assert response.json()["data"]["viewer"] == {"jurisdiction": "62"}, response.text
    else:
        _assert_refused(response)


@pytest.mark.parametrize("crit", [5, [1], [[1]], "exp", ["exp"]])
def test_a_token_whose_header_names_critical_extensions_is_refused(
    api: Api, demo_url: str, sso_api: TestClient, sso_key: tuple[ECKey, str], crit: Any
) -> None:
    """joserfc raised TypeError reading a malformed `crit` (5, [1]), before the signature: an
    INTERNAL error, logged in full, for anyone without a token. Neither this server nor an SSO
    sets `crit`, so a header with one is refused however it is written, before decoding."""
    own = _token(_signing_key(demo_url))
    header = {"alg": "ES256", "typ": "at+jwt", "kid": tokens.unverified_header(own)["kid"]}
    forged = _forged(own, {**header, "crit": crit}, b"x" * 64)
    _assert_refused(
        api.client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {forged}"})
    )
    external = _sso_token(sso_key[0], "province", "62", [])
    forged = _forged(external, {"alg": "ES256", "kid": "realm-1", "crit": crit}, b"x" * 64)
    _assert_refused(
        sso_api.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {forged}"})
    )


async def test_an_external_tokens_unknown_kid_is_named_escaped(sso_key: tuple[ECKey, str]) -> None:
    """The refusal is logged: joserfc's own message named the unverified kid as sent, so a
    newline in it forged a line of the text log."""
    key, jwks_url = sso_key
    issuer = parse_external_issuers(
        json.dumps([{"issuer": REALM, "jwks_url": jwks_url, "audience": "sinergi"}])
    )[REALM]
    kid = "realm-2\nINFO sinergi.auth: accepted" + "x" * 100
    token = jwt.encode(
        {"alg": "ES256", "kid": kid}, _sso_claims(REALM, "a", "province", "62", []), key
    )
    with pytest.raises(tokens.InvalidToken) as refused:
        await ExternalKeys().verify(issuer, token, kid, province_level)
    assert "\n" not in str(refused.value)
    assert str(refused.value) == f"unknown kid {tokens.shown(kid)}"
