"""GraphQL over HTTP through the real app: media types chosen by Accept, the specification's
status codes for each, GET for queries only, and the HTTP refusals (405, 406, 415) with their
contract codes. Whatever engine answers behind the edge, these hold."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from auth.service import AuthService
from db.engine import async_url
from db.queries import trusted_documents
from db.queries.audit import AuditWriter
from sinergi.app import create_app
from sinergi.graphql_http import wants_html
from sinergi.settings import Environment, Settings
from tests.support.databases import as_service
from tests.support.executor import audit_head, entries_after
from tests.support.http import LOOPBACK_PEER, Api
from tests.support.statements import recorded_statements

PROVINCE = "demo-province-62"
MINISTRY = "demo-ministry"
GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
VIEWER = "{ viewer { clientId } }"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _post(
    api: Api,
    body: Any,
    *,
    accept: str | None,
    client_id: str | None = PROVINCE,
    content_type: str | None = JSON,
) -> httpx.Response:
    headers = {}
    if client_id is not None:
        headers["Authorization"] = f"Bearer {api.token(client_id)}"
    if accept is not None:
        headers["Accept"] = accept
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.client.post("/graphql", content=content, headers=headers)


def _get(
    api: Api, params: dict[str, str], *, accept: str | None = JSON, client_id: str | None = PROVINCE
) -> httpx.Response:
    headers = {} if accept is None else {"Accept": accept}
    if client_id is not None:
        headers["Authorization"] = f"Bearer {api.token(client_id)}"
    return api.client.get("/graphql", params=params, headers=headers)


def _media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0]


def _codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


@pytest.fixture(scope="module")
def dev_api(demo_url: str, api: Api) -> Iterator[Api]:
    """Development mode over the demo database (`api` has registered the demo clients), as a
    browser on this machine reaches it: GraphiQL is served to a loopback Host only."""
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    app = create_app(settings, database_url=as_service(demo_url))
    with TestClient(app, base_url="http://localhost", client=LOOPBACK_PEER) as client:
        yield Api(client)


# ---- Accept ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (f"{JSON}; charset=utf-8", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE}, */*;q=0.1", GRAPHQL_RESPONSE),
        (f"{JSON};q=0, {GRAPHQL_RESPONSE};q=0.2", GRAPHQL_RESPONSE),
        ("text/html, */*;q=0.8", JSON),
    ],
)
def test_accept_chooses_the_media_type_of_the_answer(
    api: Api, accept: str | None, media_type: str
) -> None:
    response = _post(api, {"query": VIEWER}, accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert "Accept" in response.headers["vary"]
    assert response.json() == {"data": {"viewer": {"clientId": PROVINCE}}}


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/xml", f"{JSON};q=0", f"{JSON}; charset=iso-8859-1", "image/*"],
)
def test_an_accept_allowing_no_json_answer_is_406_before_the_token(api: Api, accept: str) -> None:
    with recorded_statements() as statements:
        response = _post(api, {"query": VIEWER}, accept=accept, client_id=None)
    assert response.status_code == 406
    assert _media_type(response) == JSON
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "Accept"}
    assert statements == []


# ---- status codes ---------------------------------------------------------------------------

REQUEST_ERRORS = {
    "document parsing failure": {"query": "{"},
    "document validation failure": {"query": "{ 8f31403dfe404bccbb0e835f2629c6a7 }"},
    "variable coercion failure": {
        "query": "query CoerceFailure($id: ID!) { __typename }",
        "variables": {"id": None},
    },
    "a scalar refusing a variable": {
        "query": "query($n: Int) { msmes(first: $n) { totalCount } }",
        "variables": {"n": "many"},
    },
}


@pytest.mark.parametrize("case", list(REQUEST_ERRORS))
def test_request_errors_are_400_without_data_as_graphql_response_json(api: Api, case: str) -> None:
    response = _post(api, REQUEST_ERRORS[case], accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400, response.text
    assert _media_type(response) == GRAPHQL_RESPONSE
    assert "data" not in response.json()
    assert _codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("case", list(REQUEST_ERRORS))
def test_request_errors_are_200_without_data_as_application_json(api: Api, case: str) -> None:
    response = _post(api, REQUEST_ERRORS[case], accept=JSON)
    assert response.status_code == 200, response.text
    assert _media_type(response) == JSON
    assert "data" not in response.json()
    assert _codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_a_forbidden_field_is_a_partial_success_with_200(api: Api, accept: str) -> None:
    response = _post(
        api,
        {"query": "{ viewer { clientId } msmes { totalCount } }"},
        accept=accept,
        client_id=MINISTRY,
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["data"] == {"viewer": {"clientId": MINISTRY}, "msmes": None}
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["msmes"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_a_limit_is_400_query_too_complex_in_either_media_type(api: Api, accept: str) -> None:
    deep = "{ indonesia { " + "children { " * 20 + "code" + " }" * 21 + " }"
    response = _post(api, {"query": deep}, accept=accept)
    assert response.status_code == 400
    assert _media_type(response) == accept
    assert _codes(response) == ["QUERY_TOO_COMPLEX"]
    assert "data" not in response.json()


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_no_token_is_401_with_a_challenge_in_the_negotiated_type(api: Api, accept: str) -> None:
    response = _post(api, {"query": VIEWER}, accept=accept, client_id=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _media_type(response) == accept
    assert _codes(response) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_malformed_requests_are_400_in_either_media_type(api: Api, accept: str) -> None:
    for body in (b'{ "not a JSON', b"", {"qeury": VIEWER}, {"query": VIEWER, "variables": [7]}):
        response = _post(api, body, accept=accept)
        assert response.status_code == 400, (body, response.text)
        assert _media_type(response) == accept
        assert _codes(response) == ["BAD_USER_INPUT"]


def test_over_the_rate_limit_is_429_in_the_negotiated_type(demo_url: str, api: Api) -> None:
    with TestClient(
        create_app(Settings(rate_limit=1), database_url=as_service(demo_url))
    ) as client:
        limited = Api(client)
        answers = [
            _post(limited, {"query": VIEWER}, accept=GRAPHQL_RESPONSE, client_id="demo-walidata")
            for _ in range(2)
        ]
    refused = answers[-1]
    assert refused.status_code == 429
    assert refused.headers["retry-after"]
    assert _media_type(refused) == GRAPHQL_RESPONSE
    assert _codes(refused) == ["RATE_LIMITED"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
def test_an_outage_is_503_without_partial_data(
    api: Api, accept: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost(self: AuditWriter, **entry: Any) -> None:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(AuditWriter, "append", lost)
    for query in (
        "{ msmes(first: 1) { nodes { nib } } }",  # answered by the direct path
        '{ viewer { clientId } msme(nib: "9990000000001") { name } }',  # by the executor
    ):
        response = _post(api, {"query": query}, accept=accept)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert _media_type(response) == accept
        assert "data" not in response.json()
        assert "SERVICE_UNAVAILABLE" in _codes(response)


def test_a_batch_answers_200_each_answer_with_its_own_errors(api: Api) -> None:
    response = _post(api, [{"query": VIEWER}, {"query": "{ nothing }"}], accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    first, second = response.json()
    assert first == {"data": {"viewer": {"clientId": PROVINCE}}}
    assert "data" not in second
    assert second["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_each_operation_of_a_batch_has_an_audit_entry_of_its_own(api: Api, demo_url: str) -> None:
    """A batch's operations run at once; each entry names its own operation, records and data
    subjects, none of another's."""
    lookups = {
        name: f'query {name} {{ msme(nib: "{nib}") {{ nib owner {{ nik }} }} }}'
        for name, nib in (("First", "9990000000001"), ("Second", "9990000000002"))
    }
    before = audit_head(demo_url)
    response = _post(api, [{"query": query} for query in lookups.values()], accept=JSON)
    assert response.status_code == 200, response.text
    niks = [answer["data"]["msme"]["owner"]["nik"] for answer in response.json()]
    assert len(set(niks)) == 2
    entries = {row.entry["operation"]: row for row in entries_after(demo_url, PROVINCE, before)}
    assert sorted(entries) == ["First", "Second"]
    for name, nik in zip(lookups, niks, strict=True):
        assert entries[name].subjects == [nik]
        assert entries[name].entry["records"] == {"msme": 1}


# ---- POST content types and methods ---------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        f"{JSON}; charset=latin-1",
    ],
)
def test_a_post_that_is_not_utf8_json_is_415(api: Api, content_type: str | None) -> None:
    with recorded_statements() as statements:
        response = _post(api, {"query": VIEWER}, accept=None, content_type=content_type)
    assert response.status_code == 415, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "Content-Type"}
    assert statements == []


NAMED = '{"query": "{ region(code: \\"62\\") { name } }", "operationName": null}'


@pytest.mark.parametrize(
    "body",
    [
        *(NAMED.encode(encoding) for encoding in ("utf-16", "utf-16-le", "utf-16-be")),
        *(NAMED.encode(encoding) for encoding in ("utf-32", "utf-32-le", "utf-32-be")),
        NAMED.replace("62", "Kalimantan Tengah \u00e9").encode("latin-1"),
    ],
)
def test_a_post_body_that_is_not_utf8_is_415_however_it_is_labelled(api: Api, body: bytes) -> None:
    """The standard library reads UTF-16 and UTF-32 JSON from bytes: the guard does not."""
    assert _post(api, {"query": VIEWER}, accept=None).status_code == 200  # the client, read once
    with recorded_statements() as statements:
        response = _post(api, body, accept=None, content_type=f"{JSON}; charset=utf-8")
    assert response.status_code == 415, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "body"}
    assert statements == []


def test_a_utf8_body_with_a_byte_order_mark_is_still_read(api: Api) -> None:
    """RFC 8259 lets a reader ignore it; the fast decoder refuses it, the fallback does not."""
    response = _post(api, b"\xef\xbb\xbf" + NAMED.encode(), accept=None)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["region"]["name"]


@pytest.mark.parametrize("content_type", [f"{JSON}; charset=UTF-8", f'{JSON};charset="utf-8"'])
def test_json_with_a_utf8_charset_is_accepted(api: Api, content_type: str) -> None:
    response = _post(api, {"query": VIEWER}, accept=None, content_type=content_type)
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405_naming_get_and_post(api: Api, method: str) -> None:
    response = api.client.request(
        method, "/graphql", headers={"Authorization": f"Bearer {api.token(PROVINCE)}"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    if method != "HEAD":
        assert _codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "path",
    [
        "/graphql/",
        "/nowhere",
        "/.well-known/nothing",
        # Not redirected to the path without its slash: the redirect was built from the
        # request's Host and scheme, and a token client following it posted its secret again.
        "/oauth/token/",
        "/healthz/",
        "/.well-known/jwks.json/",
    ],
)
def test_an_unknown_path_is_a_coded_404(api: Api, path: str) -> None:
    response = api.client.post(path) if path == "/oauth/token/" else api.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert _codes(response) == ["NOT_FOUND"]


def test_another_method_on_the_token_endpoint_is_a_coded_405_naming_post(api: Api) -> None:
    response = api.client.get("/oauth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _codes(response) == ["BAD_USER_INPUT"]
    assert response.json()["errors"][0]["extensions"]["field"] == "method"


# ---- GET ------------------------------------------------------------------------------------

REGIONS = """
query Region($code: String!) { region(code: $code) { name } }
query Me { viewer { clientId } }
"""


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE, "*/*", None])
def test_get_executes_a_query_with_its_url_encoded_parameters(api: Api, accept: str | None) -> None:
    response = _get(
        api,
        {
            "query": REGIONS,
            "operationName": "Region",
            "variables": json.dumps({"code": "62"}),
            "extensions": json.dumps({"some": "value"}),
        },
        accept=accept,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"region": {"name": "Kalimantan Tengah"}}}


def test_get_in_development_executes_a_query_for_a_json_client(dev_api: Api) -> None:
    response = _get(dev_api, {"query": VIEWER}, accept=JSON)
    assert response.status_code == 200
    assert _media_type(response) == JSON
    assert response.json() == {"data": {"viewer": {"clientId": PROVINCE}}}


def test_get_answers_request_errors_as_post_does(api: Api) -> None:
    response = _get(api, {"query": "{ nothing }"}, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "data" not in response.json()
    response = _get(api, {"query": REGIONS}, accept=GRAPHQL_RESPONSE)  # two operations, no name
    assert response.status_code == 400


MUTATION = (
    'mutation { reportRealisation(report: {indicator: "KOP_PRODUKSI_VOLUME", '
    'jurisdiction: "62", year: 2025, value: "1", source: "get"}) { value } }'
)


@pytest.mark.parametrize(
    "params",
    [
        {"query": MUTATION},
        {
            "query": "query Q { __typename } " + MUTATION.replace("mutation", "mutation M"),
            "operationName": "M",
        },
        {"query": "mutation { __typename }"},
    ],
)
def test_a_mutation_over_get_is_405_and_runs_nothing(api: Api, params: dict[str, str]) -> None:
    with recorded_statements() as statements:
        response = _get(api, params, accept=GRAPHQL_RESPONSE)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert _codes(response) == ["BAD_USER_INPUT"]
    assert not [s for s in statements if "realisation" in s.lower()], statements


def test_a_subscription_over_get_is_405_pointing_to_the_websocket(api: Api) -> None:
    response = _get(
        api, {"query": "subscription { msmeChanges { endCursor } }"}, accept=GRAPHQL_RESPONSE
    )
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert _codes(response) == ["BAD_USER_INPUT"]
    message = response.json()["errors"][0]["message"]
    assert "WebSocket (graphql-transport-ws)" in message
    assert "mutations" not in message


def test_a_query_beside_a_mutation_may_still_be_selected_over_get(api: Api) -> None:
    document = "query Q { __typename } " + MUTATION.replace("mutation", "mutation M")
    response = _get(api, {"query": document, "operationName": "Q"})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_get_meets_the_same_guard_and_token_check(api: Api) -> None:
    deep = "{ indonesia { " + "children { " * 20 + "code" + " }" * 21 + " }"
    assert _get(api, {"query": "{ __typename }"}).status_code == 200  # its registration read
    with recorded_statements() as statements:
        response = _get(api, {"query": deep})
        unauthenticated = _get(api, {"query": deep}, client_id=None)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "depth"
    assert unauthenticated.status_code == 401
    assert statements == []


@pytest.mark.parametrize(
    ("query_string", "field"),
    [
        ("query=%7B__typename%7D&variables=%7Bnot-json", "variables"),
        ("query=%7B__typename%7D&extensions=%5B", "extensions"),
        ("query=%7B__typename%7D&query=%7Bviewer%7BclientId%7D%7D", "query"),
        ("query=%7B__typename%7D&variables=%5B7%5D", "variables"),
        ("query=%7B__typename%7D&extensions=%22x%22", "extensions"),
        ("variables=%7B%7D", "query"),
        ("query=%7B__typename%7D&x=%FF", "query string"),
        # nested too deeply for json.loads (RecursionError): it was 500 INTERNAL
        ("query=%7B__typename%7D&variables=" + "%5B" * 5000 + "%5D" * 5000, "variables"),
    ],
)
def test_get_with_malformed_parameters_is_400_naming_them(
    api: Api, query_string: str, field: str
) -> None:
    response = api.client.get(
        f"/graphql?{query_string}", headers={"Authorization": f"Bearer {api.token(PROVINCE)}"}
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field


def test_get_may_name_a_registered_document_by_its_hash_but_not_a_mutation(
    api: Api, demo_url: str
) -> None:
    client = "demo-province-61"
    query = 'query Kalbar { region(code: "61") { name } }'
    mutation = "mutation Nothing { __typename }"

    async def register() -> None:
        engine = create_async_engine(async_url(demo_url))
        async with engine.begin() as connection:
            await trusted_documents.register(
                connection,
                client,
                [(_sha256(query), "Kalbar", query), (_sha256(mutation), None, mutation)],
            )
        await engine.dispose()

    asyncio.run(register())
    for document, status in ((query, 200), (mutation, 405)):
        persisted = {"persistedQuery": {"version": 1, "sha256Hash": _sha256(document)}}
        response = _get(api, {"extensions": json.dumps(persisted)}, accept="*/*", client_id=client)
        assert response.status_code == status, response.text
    assert response.headers["allow"] == "POST"


def test_a_subscription_over_post_is_refused_naming_the_websocket(api: Api, demo_url: str) -> None:
    """It ran as a query and ended in INTERNAL (a subscription's root gives a stream, not a
    value): as text, by its registered hash, or in a batch, it is a malformed request in
    either media type, as queries over the WebSocket are refused there."""
    client = "demo-province-61"
    subscription = "subscription Changes { msmeChanges { endCursor } }"

    async def register() -> None:
        engine = create_async_engine(async_url(demo_url))
        async with engine.begin() as connection:
            await trusted_documents.register(
                connection, client, [(_sha256(subscription), "Changes", subscription)]
            )
        await engine.dispose()

    asyncio.run(register())
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": _sha256(subscription)}}
    for body in (
        {"query": subscription},
        {"extensions": persisted},
        [{"query": VIEWER}, {"query": subscription}],
    ):
        for accept in (GRAPHQL_RESPONSE, JSON):
            response = _post(api, body, accept=accept, client_id=client)
            assert response.status_code == 400, response.text
            (error,) = response.json()["errors"]
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
            assert "WebSocket" in error["message"]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---- GraphiQL -------------------------------------------------------------------------------


def test_graphiql_is_for_browsers_in_development_only(api: Api, dev_api: Api) -> None:
    page = dev_api.client.get("/graphql", headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Accept" in page.headers["vary"]
    for client in (dev_api, api):
        not_a_page = client.client.get("/graphql", headers={"Accept": "*/*"})
        assert not_a_page.status_code == 401  # a GraphQL request, without its token
        assert _media_type(not_a_page) == JSON
    production = api.client.get("/graphql", headers={"Accept": BROWSER})
    assert production.status_code == 401
    assert "graphiql" not in production.text.lower()
    assert api.client.get("/graphql", headers={"Accept": "text/html"}).status_code == 406


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        ("text/html", True),
        ("text/html, */*;q=0.8", True),
        (f"text/html, {JSON}", True),  # as highly, named first
        (f"{JSON};q=0.5, text/html", True),
        (f"{JSON}, text/html", False),  # as highly, JSON named first: README's rule
        (f"{GRAPHQL_RESPONSE}, text/html", False),
        (f"text/html;q=0.5, {JSON}", False),
        ("*/*", False),
        (JSON, False),
        (None, False),
    ],
)
def test_graphiql_goes_to_an_accept_that_prefers_html(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html


def test_every_answer_is_kept_from_caches_and_from_sniffing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer may hold personal data (a NIK, an owner's phone): no shared cache on the way
    may keep it, and no browser may take its JSON for HTML. Every answer of the endpoint says
    so, once, whatever its method or status, an internal error's too."""
    auth = {"Authorization": f"Bearer {api.token(PROVINCE)}"}
    answers = [
        (200, _post(api, {"query": VIEWER}, accept=JSON)),
        (200, api.client.get("/graphql", params={"query": VIEWER}, headers=auth)),
        (401, _post(api, {"query": VIEWER}, accept=JSON, client_id=None)),
        (415, _post(api, VIEWER.encode(), accept=JSON, content_type="text/plain")),
        (406, _post(api, {"query": VIEWER}, accept="text/csv")),
        (405, api.client.put("/graphql", headers=auth)),
        (400, api.client.get("/graphql", params={"query": VIEWER, "variables": "["}, headers=auth)),
    ]

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(AuthService, "authenticate", broken)
    answers.append((500, _post(api, {"query": VIEWER}, accept=JSON)))
    for status, answer in answers:
        assert answer.status_code == status, answer.text
        assert answer.headers.get_list("cache-control") == ["no-store"], status
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], status
