"""Abuse through HTTP: oversized, pathological and malformed requests are refused with a clear
4xx that names the limit, once the token is checked and before any SQL runs."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
import uuid
from typing import Any

import pytest
import strawberry.schema.schema
from graphql import validate
from starlette.testclient import TestClient

from schema.build import sdl
from schema.documents import parse_document
from schema.query_limits import QueryLimits
from sinergi.app import create_app
from sinergi.guard import OperationChecks, measure_key
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.http import Api, served
from tests.support.served import served_process
from tests.support.statements import recorded_statements

CLIENT = "demo-province-62"
VIEWER = "{ viewer { clientId } }"


def _nested(depth: int) -> str:
    """A real path of the schema, `depth` fields deep."""
    return "{ indonesia { " + "children { " * (depth - 2) + "code" + " }" * depth


ABUSES: dict[str, tuple[Any, str, int, int]] = {
    # name → (request body, limit named, its maximum, what the request had)
    "depth 50": ({"query": _nested(50)}, "depth", 12, 50),
    "1,000 aliases": (
        {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }"},
        "aliases",
        30,
        1000,
    ),
    "1 MB document": (
        {"query": VIEWER + " " * 1_000_000},
        "document size",
        100_000,
        1_000_000 + len(VIEWER),
    ),
    "batch of 100": ([{"query": VIEWER}] * 100, "batch", 10, 100),
}


def _checked_token(api: Api, client_id: str = CLIENT) -> str:
    """A token of `client_id` whose registration the server has read already: the token check
    reads it once per process, so what a test records after is its request's own SQL, whatever
    ran before it."""
    token = api.token(client_id)
    assert api.post({"query": "{ __typename }"}, token).status_code == 200
    return token


@pytest.mark.parametrize("abuse", list(ABUSES))
def test_abusive_documents_are_refused_naming_the_limit_without_sql(api: Api, abuse: str) -> None:
    body, limit, maximum, actual = ABUSES[abuse]
    token = _checked_token(api)
    with recorded_statements() as statements:
        response = api.post(body, token)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": limit,
        "maximum": maximum,
        "actual": actual,
    }
    assert limit in error["message"]
    assert statements == []


def test_a_request_standing_for_nobody_is_refused_before_its_document_is_parsed(
    api: Api,
) -> None:
    """The attack: 300 distinct 99 KB documents without a token took a server from 756 MB to
    1.6 GB, each syntax tree kept by the parse caches. Without a token, or with a bad one, the
    answer is 401 and no document is parsed, costed or kept; the limits are still checked for
    a client (test_abusive_documents_…)."""
    parses = parse_document.cache_info().misses
    for token in (None, "not-a-token", api.token(CLIENT) + "x"):
        for n in range(3):
            fields = " ".join(f"f{n}x{i}: __typename" for i in range(40))
            for body in ({"query": "{ " + fields + " }"}, ABUSES["depth 50"][0]):
                with recorded_statements() as statements:
                    response = api.post(body, token)
                assert response.status_code == 401, response.text
                assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
                assert statements == []
    assert parse_document.cache_info().misses == parses
    assert api.post({"query": "{ __typename }"}, api.token(CLIENT)).status_code == 200


def test_a_body_over_the_size_limit_is_refused_before_it_is_read_whole(api: Api) -> None:
    body = json.dumps({"query": VIEWER, "variables": {"pad": "x" * 3_000_000}})
    token = _checked_token(api)
    with recorded_statements() as statements:
        response = api.client.post(
            "/graphql",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
        )
    assert response.status_code == 413
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "body size"
    assert statements == []


MALFORMED: dict[str, bytes] = {
    "not JSON": b"{query: viewer}",
    "truncated JSON": b'{"query": "{ viewer { clientId } }"',
    "invalid UTF-8": b'{"query": "\xff\xfe"}',
    "empty body": b"",
    "a number": b"42",
    "a string": b'"{ viewer { clientId } }"',
    "null": b"null",
    "an empty list": b"[]",
    "a list of numbers": b"[1, 2]",
    "no query": b'{"variables": {}}',
    "query not a string": b'{"query": 42}',
    "query null": b'{"query": null}',
    "variables not an object": b'{"query": "{ viewer { clientId } }", "variables": "x"}',
    "batched variables not an object": b'[{"query": "{ viewer { clientId } }", "variables": 1}]',
    "operationName not a string": b'{"query": "{ viewer { clientId } }", "operationName": 5}',
    "extensions not an object": b'{"query": "{ viewer { clientId } }", "extensions": []}',
    "syntax error": b'{"query": "{ viewer { "}',
    "unknown field": b'{"query": "{ nothingHere }"}',
    "unknown operation name": b'{"query": "{ viewer { clientId } }", "operationName": "Nope"}',
    "two anonymous operations": b'{"query": "{ viewer { clientId } } { viewer { scopes } }"}',
    "a mutation": b'{"query": "mutation { viewer }"}',
    "a subscription": b'{"query": "subscription { viewer }"}',
    "deep JSON": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bodies_get_a_clear_4xx(api: Api, case: str) -> None:
    response = api.client.post(
        "/graphql",
        content=MALFORMED[case],
        headers={
            "Authorization": f"Bearer {api.token(CLIENT)}",
            "Content-Type": "application/json",
        },
    )
    assert 400 <= response.status_code < 500 or (
        response.status_code == 200 and "errors" in response.json()
    ), (response.status_code, response.text)
    for error in response.json()["errors"]:
        assert error["extensions"]["code"] in {"BAD_USER_INPUT", "QUERY_TOO_COMPLEX"}, error


CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/graphql",
    "application/xml",
    None,
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_other_content_types_get_a_clear_4xx(api: Api, content_type: str | None) -> None:
    headers = {"Authorization": f"Bearer {api.token(CLIENT)}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    for body in (json.dumps({"query": VIEWER}).encode(), VIEWER.encode()):
        response = api.client.post("/graphql", content=body, headers=headers)
        assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_methods_other_than_get_and_post_are_refused(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.token(CLIENT)}"}
    for method in ("PUT", "DELETE", "PATCH"):
        response = api.client.request(method, "/graphql", params={"query": VIEWER}, headers=headers)
        assert response.status_code == 405, (method, response.status_code, response.text)


@pytest.mark.parametrize(
    "body",
    [
        {"query": "query($c: String!) { region(code: $c) { name } }", "variables": {"c": "62\x00"}},
        {"query": 'query { region(code: "62\\u0000") { name } }'},
        {"query": "query($c: [String]) { __typename }", "variables": {"c": ["\ud800"]}},
        {"query": "{ viewer { clientId } } # \ud800"},
    ],
)
def test_strings_no_column_can_store_are_refused_before_sql(api: Api, body: Any) -> None:
    token = _checked_token(api)
    with recorded_statements() as statements:
        response = api.client.post(
            "/graphql",
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] in {"query", "variables"}
    assert statements == []


def test_variables_nested_as_deeply_as_json_allows_are_searched_not_an_internal_error(
    api: Api,
) -> None:
    """The attack: a thousand nested arrays in `variables`, which the JSON decoder accepts,
    made the search for unstorable strings recurse past Python's limit: 500 INTERNAL. The
    search still finds a NUL at the bottom."""
    token = api.token(CLIENT)
    for inner, status in (("", 200), ('"\\u0000"', 400)):
        deep = "[" * 1000 + inner + "]" * 1000
        response = api.client.post(
            "/graphql",
            content='{"query": "{ __typename }", "variables": {"deep": ' + deep + "}}",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status_code == status, response.text
    assert response.json()["errors"][0]["extensions"]["field"] == "variables"


def _region_tree() -> str:
    return "indonesia { children { children { children { code name } } } }"


def test_aliased_region_trees_are_refused_before_sql(api: Api) -> None:
    """Ten aliased trees once ran 2.8 s and answered 3.5 MB: every list counts in the cost."""
    query = "{ " + " ".join(f"t{i}: {_region_tree()}" for i in range(10)) + " }"
    token = _checked_token(api)
    with recorded_statements() as statements:
        response = api.post({"query": query}, token)
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"
    assert statements == []


def test_an_answer_over_the_response_size_bound_is_refused_naming_it(demo_url: str) -> None:
    settings = Settings(rate_limit=1_000_000, query_limits=QueryLimits(max_response_bytes=20_000))
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        api = Api(client)
        small = api.graphql('{ region(code: "62") { name } }', CLIENT)
        assert small["data"]["region"]["name"]
        response = api.post(
            {"query": "{ indonesia { children { children { code name } } } }"},
            api.token(CLIENT),
        )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "response size"
    assert error["extensions"]["maximum"] == 20_000
    assert error["extensions"]["actual"] > 20_000
    assert "data" not in response.json()


def test_a_documents_estimate_follows_the_variables_it_reads(api: Api) -> None:
    """The guard keeps an estimate per document and per value of the variables that size it:
    the same document is refused with a large page size in between two small ones it accepts,
    and variables the estimate does not read leave it as it was."""
    query = """query($n: Int, $nib: String!) { cooperatives(first: 100) { nodes {
        memberMsmes(first: $n) { nodes { name nib regency { name province { name } } } } } }
        msme(nib: $nib) { name } }"""
    token = api.token(CLIENT)

    def status(n: int, nib: str = "9990000000001") -> int:
        response = api.post({"query": query, "variables": {"n": n, "nib": nib}}, token)
        assert "errors" not in response.json() or response.status_code == 400, response.text
        return response.status_code

    assert status(1) == 200
    assert status(100) == 400
    assert status(1, nib="9990000000002") == 200
    assert status(100, nib="9990000000003") == 400


def test_a_figure_tables_dimensions_given_as_variables_in_a_list_are_costed(api: Api) -> None:
    """The attack: `groupBy: [$a, $b]` was costed as a table of one row, whatever the
    dimensions, so aliased tables of regencies by sector ran past the cost limit. A narrow
    table first, so that its estimate is kept, then a wide one with the same document."""
    tables = " ".join(
        f"t{i}: msmeFigures(groupBy: [$a, $b]) {{ key {{ value }} count }}" for i in range(25)
    )
    query = f"query($a: MsmeDimension!, $b: MsmeDimension!) {{ {tables} }}"
    token = api.token("demo-ministry")
    narrow = api.post({"query": query, "variables": {"a": "SCALE", "b": "ACTIVE"}}, token)
    assert narrow.status_code == 200, narrow.text
    with recorded_statements() as statements:
        wide = api.post({"query": query, "variables": {"a": "REGENCY", "b": "KBLI_SECTION"}}, token)
    assert wide.status_code == 400, wide.text
    (error,) = wide.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"
    assert statements == []


def _doubling_fragments(levels: int) -> str:
    fragments = ["fragment F0 on Query { __typename }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return f"query {{ ...F{levels - 1} }} " + " ".join(fragments)


def test_fragments_spread_twice_at_every_level_are_refused_at_once(
    api: Api,
) -> None:
    """The attack: 21 fragments each spreading the one below twice (844 bytes, no token) kept
    a process busy for 3 s before QUERY_TOO_COMPLEX, twice as long with each level more. Each
    fragment is now measured once, so 60 levels are refused at once (a client's: without a token
    the request is 401 before its document is read)."""
    token = _checked_token(api)
    started = time.perf_counter()
    with recorded_statements() as statements:
        response = api.post({"query": _doubling_fragments(60)}, token)
    assert time.perf_counter() - started < 1
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"
    assert statements == []


@pytest.mark.parametrize(
    ("group_by", "message"),
    [
        (["X"] * 150_000, "groupBy: at most 4 dimensions, got 150000"),
        (["SCALE", "SCALE"], "groupBy: names a dimension twice"),
    ],
)
def test_a_groupby_the_resolver_refuses_is_refused_by_the_guard(
    api: Api, group_by: list[str], message: str
) -> None:
    """The attack: a groupBy variable of 150,000 items (750 KB, no token) took 3 s to estimate.
    The guard refuses it as the resolver would (tests/test_figures.py), before any SQL."""
    query = "query($g: [MsmeDimension!]!) { msmeFigures(groupBy: $g) { count } }"
    token = _checked_token(api)
    started = time.perf_counter()
    with recorded_statements() as statements:
        response = api.post({"query": query, "variables": {"g": group_by}}, token)
    assert time.perf_counter() - started < 1
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error == {
        "message": message,
        "extensions": {"code": "BAD_USER_INPUT", "field": "groupBy"},
    }
    assert statements == []


def test_a_province_table_filtered_through_a_variable_is_costed_as_the_provinces(
    api: Api,
) -> None:
    """The region a figure table is filtered to narrows its estimate whether it is written in
    the document or sent as a variable: a dashboard's document is fixed and its region varies."""
    query = """query($r: String) { msmeFigures(groupBy: [REGENCY, KBLI_SECTION],
        filter: {region: $r}) { count capitalSum turnoverSum employeesSum suppressed
        key { dimension value } } }"""
    token = api.token("demo-ministry")
    province = api.post({"query": query, "variables": {"r": "62"}}, token)
    assert province.status_code == 200, province.text
    assert "errors" not in province.json()
    national = api.post({"query": query, "variables": {"r": None}}, token)
    assert national.status_code == 400, national.text
    assert national.json()["errors"][0]["extensions"]["limit"] == "cost"


def test_aliased_figure_tables_of_four_dimensions_are_refused_before_sql(api: Api) -> None:
    """The attack: 24 aliased tables of regencies by section, scale and year (filters apart, so
    no cell was shared) were estimated at 2,000 rows each; each answered 13,189, and together
    they took 5 s of CPU and every pooled connection. Every subtotal now counts."""
    tables = " ".join(
        f"t{i}: msmeFigures(groupBy: [REGENCY, KBLI_SECTION, SCALE, ESTABLISHED_YEAR], "
        f'filter: {{region: "{region}"}}) {{ count }}'
        for i, region in enumerate(["61", "62", "64"] * 8)
    )
    token = _checked_token(api, "demo-ministry")
    with recorded_statements() as statements:
        response = api.post({"query": f"{{ {tables} }}"}, token)
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"
    assert statements == []


def test_many_fields_sharing_a_name_are_refused_before_validation(api: Api) -> None:
    """The attack: 1,240 copies of `viewer { clientId }` (4,962 tokens) cost 0.75-2 s of CPU
    to validate, twice, before "Validation aborted". The guard counts the fields first."""
    token = api.token(CLIENT)
    assert api.post({"query": "{ __typename }"}, token).status_code == 200
    copies = "{ " + " ".join(["viewer { clientId }"] * 1240) + " }"
    with recorded_statements() as statements:
        response = api.post({"query": copies}, token)
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "fields",
        "maximum": QueryLimits().max_fields,
        "actual": 2480,
    }
    assert statements == []
    within = "{ " + " ".join(["viewer { clientId }"] * 100) + " }"
    assert api.graphql(within, CLIENT)["data"] == {"viewer": {"clientId": CLIENT}}


def test_a_document_that_does_not_validate_is_validated_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine validates a document first; what it leaves to Strawberry's view (a document
    that does not validate) was validated there again, doubling the cost of a costly one."""
    token = api.token(CLIENT)
    validations: list[object] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        validations.append(args[1])
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry.schema.schema, "validate", counted)
    unseen = f"nothing{uuid.uuid4().hex}"
    for query in (f"{{ viewer {{ clientId }} {unseen} }}", f"{{ viewer {{ {unseen} }} }}"):
        response = api.post({"query": query}, token)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(validations) == 2


def _trickled(
    base: str,
    token: str | None,
    seconds: float,
    *,
    path: str = "/graphql",
    content_type: str = "application/json",
) -> tuple[bytes, float]:
    """What the server answers a POST whose headers promise 1,000 bytes of body and which then
    sends a byte every 0.2 s, for up to `seconds`; and how long the answer took."""
    host, port = base.removeprefix("http://").split(":")
    authorization = f"Authorization: Bearer {token}\r\n" if token is not None else ""
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=seconds + 5) as connection:
        connection.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                f"{authorization}Content-Length: 1000\r\n\r\n"
            ).encode()
        )
        connection.setblocking(False)
        answer = b""
        while time.monotonic() - started < seconds and not answer.endswith(b"}"):
            with contextlib.suppress(BlockingIOError):
                answer += connection.recv(65536)
            with contextlib.suppress(OSError):
                connection.send(b" ")
            time.sleep(0.2)
    return answer, time.monotonic() - started


def test_a_body_trickled_in_is_refused_once_its_time_is_up(api: Api, demo_url: str) -> None:
    """The attack: headers promising a body, then a byte every 5 s, held a connection 45 s and
    more. Without a token the answer is 401 at once; with one, 408 once the time is up."""
    token = api.token(CLIENT)
    settings = {"SINERGI_BODY_TIMEOUT": "1"}
    with served_process(as_service(demo_url), "production", settings) as (base, _):
        refused, at_once = _trickled(base, None, 10)
        assert refused.startswith(b"HTTP/1.1 401"), refused
        assert at_once < 1
        late, after = _trickled(base, token, 10)
    assert late.startswith(b"HTTP/1.1 408"), late
    assert 1 <= after < 3
    body = json.loads(late.split(b"\r\n\r\n", 1)[1] or b"{}")
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "body"}


def test_a_token_request_trickled_in_is_refused_once_its_time_is_up(demo_url: str) -> None:
    """The token endpoint reads its body from anyone, and waited for a trickled one forever
    where /graphql answers 408 after SINERGI_BODY_TIMEOUT: it answers 408 too, in RFC 6749's
    shape, and closes the connection, whose body may still be arriving."""
    settings = {"SINERGI_BODY_TIMEOUT": "1"}
    with served_process(as_service(demo_url), "production", settings) as (base, _):
        form = "application/x-www-form-urlencoded"
        late, after = _trickled(base, None, 10, path="/oauth/token", content_type=form)
    assert late.startswith(b"HTTP/1.1 408"), late
    assert 1 <= after < 3
    head, _, body = late.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close" in head.lower(), head
    assert b"\r\ncache-control: no-store" in head.lower(), head
    assert json.loads(body) == {
        "error": "invalid_request",
        "error_description": "body: not received within 1 s",
    }


def test_a_batch_stops_once_its_answers_pass_the_response_size_bound(
    api: Api, demo_url: str
) -> None:
    """The attack: ten operations of 5 MB answers each were all built, 54 MB, before the whole
    was refused. Each operation's answer now counts as it is made, and the batch stops at the
    one that passes the bound: what was built is about the bound, not ten answers."""
    query = "{ indonesia { children { code name } } }"
    one = len(json.dumps(api.graphql(query, CLIENT)["data"], separators=(",", ":")))
    bound = one * 5 // 2
    settings = Settings(rate_limit=1_000_000, query_limits=QueryLimits(max_response_bytes=bound))
    with served(demo_url, settings) as bounded:
        assert bounded.graphql(query, CLIENT)["data"]
        assert bounded.post([{"query": query}] * 2, bounded.token(CLIENT)).status_code == 200
        response = bounded.post([{"query": query}] * 10, bounded.token(CLIENT))
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "response size"
    assert bound < error["extensions"]["actual"] <= bound + one


def test_the_cost_estimate_is_kept_by_a_digest_of_the_values_it_reads() -> None:
    """One key for each document and values its estimate reads, the digest of those values of
    one size whatever their length."""
    query = "query($r: String) { msmes(first: 1, filter: {region: $r}) { totalCount } }"
    keys = {measure_key(query, (("r", value),)) for value in ("62", "x" * 1_500_000, None)}
    assert len(keys) == 3
    assert {len(digest) for kept, digest in keys if kept is query} == {32}
    assert measure_key(query, (("r", "62"),)) == measure_key(query, (("r", "6" + "2"),))
    assert measure_key(query, (("first", 1),)) != measure_key(query, (("first", "1"),))


def test_the_guard_keeps_no_value_a_request_sends() -> None:
    """The attack: `filter: {region: $r}` with a new 1.5 MB `r` each time (refused later by its
    resolver) was kept in the estimate's cache, 60 requests taking a worker from 368 MB to
    439 MB, and 512 of them some 0.8 GB."""
    checks = OperationChecks(QueryLimits(), sdl())
    query = "query($r: String) { msmes(first: 1, filter: {region: $r}) { totalCount } }"
    region = "x" * 1_500_000
    held = sys.getrefcount(region)
    assert checks.refusal({"query": query, "variables": {"r": region}}) is None
    assert sys.getrefcount(region) == held
