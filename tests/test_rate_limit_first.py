"""The rate limit comes before the document checks. The attack: a client over its limit sent
batches of ten distinct documents of some 4,900 tokens each; every answer was 429, yet each
request was decoded, parsed and costed first (200 ms of a worker against 2 ms), and three such
senders took another client's `{ __typename }` from 2 ms to 1.7 s. Now a client its process
knows to be over the limit is refused before its body is read, and every request is counted
before its documents are parsed, so the documents the checks refuse use up the limit too."""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schema.documents import parse_document
from sinergi import guard
from sinergi.rate_limit import SYNC_SECONDS
from sinergi.settings import Settings
from tests.support.access_log import captured
from tests.support.clients import registered
from tests.support.databases import as_service
from tests.support.http import Api, served
from tests.support.served import served_process
from tests.support.windows import clear_of_an_edge

LIMIT = 20
# A window of a day: no test here straddles a window's edge but once in hours.
WINDOW_SECONDS = 86400


def _heavy(count: int) -> list[dict[str, str]]:
    """A batch of `count` distinct documents of some 4,800 tokens each, within the token limit:
    each costs a worker milliseconds to parse and cost."""
    arguments = ", ".join(f"a{i}: {i}" for i in range(1600))
    return [
        {"query": f"query Q{uuid.uuid4().hex} {{ __typename({arguments}) }}"} for _ in range(count)
    ]


def _over_complex(count: int) -> list[dict[str, str]]:
    """A batch of `count` distinct documents the guard refuses (1,000 aliases, 30 allowed)."""
    return [
        {"query": "{ " + " ".join(f"a{uuid.uuid4().hex}: __typename" for _ in range(1000)) + " }"}
        for _ in range(count)
    ]


def limited_settings() -> Settings:
    """A limit of LIMIT requests a day."""
    return Settings(rate_limit=LIMIT, rate_limit_window_seconds=WINDOW_SECONDS)


@pytest.fixture(scope="module")
def limited(demo_url: str, api: Api) -> Iterator[Api]:
    """The app with `limited_settings` (the `api` fixture registered the demo clients), begun
    at least two minutes before the day's window ends, which the module's tests do not outlast:
    requests straddling the edge count in two windows, and an expected 429 does not come."""
    clear_of_an_edge(WINDOW_SECONDS, margin=120)
    with served(demo_url, limited_settings()) as limited_api:
        yield limited_api


def _fresh_token(api: Api, demo_url: str) -> str:
    """A token of a client registered for the test: no other test has used up its limit."""
    name = f"Rate limit {uuid.uuid4().hex[:8]}"
    client_id, secret = registered(demo_url, name, purpose="rate limit test", scopes="records:read")
    issued = api.token_response(client_id, secret=secret)
    assert issued.status_code == 200, issued.text
    token: str = issued.json()["access_token"]
    return token


def _assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_SECONDS
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["limit"] == LIMIT


def _use_up(client: httpx.Client, token: str) -> None:
    """Requests until the first 429: the process then knows the client is over its limit."""
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(LIMIT + max(1, LIMIT // 100) + 1):
        answered = client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        if answered.status_code == 429:
            return
        assert answered.status_code == 200, answered.text
    pytest.fail("the limit was never reached")


def test_a_client_over_its_limit_is_refused_before_its_documents_are_parsed(
    limited: Api, demo_url: str
) -> None:
    token = _fresh_token(limited, demo_url)
    _use_up(limited.client, token)
    parses = parse_document.cache_info().misses
    for body in (
        _heavy(10),
        _over_complex(10),
        {"query": "{ viewer { "},  # a syntax error
        [],  # an empty batch
        [{"query": "{ __typename }"}] * 100,  # past the batch limit
    ):
        _assert_rate_limited(limited.post(body, token))
    malformed = limited.client.post(
        "/graphql",
        content=b"{ not JSON",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    _assert_rate_limited(malformed)
    assert parse_document.cache_info().misses == parses


def test_what_the_requests_http_shape_decides_comes_before_the_limit(
    limited: Api, demo_url: str
) -> None:
    """The contract's exception to "429 whatever else is wrong": what HTTP itself refuses is
    answered before the token is read, cheaply, so it is answered so over the limit too."""
    token = _fresh_token(limited, demo_url)
    _use_up(limited.client, token)
    authorized = {"Authorization": f"Bearer {token}"}
    query = {"query": "{ __typename }"}
    client = limited.client
    for response, status in (
        (client.put("/graphql", json=query, headers=authorized), 405),
        (client.post("/graphql", json=query, headers={**authorized, "Accept": "image/png"}), 406),
        (
            client.post(
                "/graphql",
                content=json.dumps(query),
                headers={**authorized, "Content-Type": "text/plain"},
            ),
            415,
        ),
        (
            client.get(
                "/graphql", params={"query": "{ __typename }", "variables": "["}, headers=authorized
            ),
            400,
        ),
    ):
        assert response.status_code == status, response.text
    _assert_rate_limited(client.get("/graphql", params=query, headers=authorized))


def _logged_operations(stream: io.StringIO) -> list[tuple[int, str | None]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [(line["status"], line["operation"]) for line in lines if line["path"] == "/graphql"]


def test_a_request_refused_once_its_body_is_read_keeps_its_operation_name(
    limited: Api, demo_url: str
) -> None:
    """The regression: refused before the checks, which named the operation, every 429 was
    logged and counted as "(anonymous)", however its request named itself. One refused once its
    body is decoded now keeps the `operationName` it sends (a GraphQL name, its document
    unparsed), or "(batch)"; one refused before its body is read stays anonymous."""
    named = {"query": "query Probe { __typename }", "operationName": "Probe"}
    token = _fresh_token(limited, demo_url)
    # Counted in PostgreSQL at once (a new client's first request), so nothing is left for this
    # process's background sync to send: what it knows changes only when it counts again.
    assert limited.post(named, token).status_code == 200
    # Another process uses up the rest of the limit; this one does not know.
    with served(demo_url, limited_settings()) as other:
        for batch in (10, LIMIT - 11):  # each over the allowance: counted in PostgreSQL at once
            answered = other.post([{"query": "{ __typename }"}] * batch, token)
            assert answered.status_code == 200, answered.text
    # Past twice the sync interval this process counts its next request in PostgreSQL, where
    # it learns the total is over the limit: after the body is read.
    time.sleep(2 * SYNC_SECONDS + 0.05)
    with captured() as access_log:
        _assert_rate_limited(limited.post(named, token))
        _assert_rate_limited(limited.post(named, token))
    assert _logged_operations(access_log) == [
        (429, "Probe"),  # refused once its body was read
        (429, None),  # known to be over: refused before its body is read
    ]


@pytest.mark.parametrize(
    ("body", "operation"),
    [
        ({"query": "query Probe { __typename }", "operationName": "Probe"}, "Probe"),
        ([{"query": "{ __typename }"}] * 2, "(batch)"),
        ({"query": "query Probe { __typename }"}, None),
        ({"query": "{ __typename }", "operationName": "Not-a-name"}, None),
        ({"query": "{ __typename }", "operationName": "A" * 129}, None),
    ],
)
def test_the_name_a_rate_limited_request_is_logged_under(body: Any, operation: str | None) -> None:
    """Only a GraphQL name of bounded length, as the guard lets any request send, is recorded;
    a batch is "(batch)", as one the checks pass is."""
    assert guard._claimed(body) == operation


def test_documents_the_checks_refuse_count_against_the_limit(limited: Api, demo_url: str) -> None:
    """Each operation counts as the request it would be, whether the checks pass it or not: two
    refused batches of ten use up a limit of twenty (each, over the process's allowance of one,
    is counted in PostgreSQL before it is looked at, so the count is exact)."""
    token = _fresh_token(limited, demo_url)
    for _ in range(2):
        refused = limited.post(_over_complex(10), token)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    _assert_rate_limited(limited.post({"query": "{ __typename }"}, token))


def test_a_batch_refused_for_its_length_counts_once(limited: Api, demo_url: str) -> None:
    """Counted by its length, one body of ten thousand `{}` would use up any limit."""
    token = _fresh_token(limited, demo_url)
    refused = limited.post([{"query": "{ __typename }"}] * (LIMIT + 10), token)
    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"][0]["extensions"]["limit"] == "batch"
    assert limited.post({"query": "{ __typename }"}, token).status_code == 200


def test_a_client_over_its_limit_is_refused_before_its_body_arrives(
    api: Api, demo_url: str
) -> None:
    """A client its process knows to be over the limit is answered at once, its body unread: a
    POST whose headers promise a body that never comes gets 429, not the body deadline's 408."""
    settings = {
        "SINERGI_RATE_LIMIT": str(LIMIT),
        "SINERGI_RATE_LIMIT_WINDOW": str(WINDOW_SECONDS),
        "SINERGI_BODY_TIMEOUT": "30",
    }
    clear_of_an_edge(WINDOW_SECONDS, margin=60)
    with served_process(as_service(demo_url), "production", settings) as (base, _):
        token = _fresh_token(api, demo_url)
        host, port = base.removeprefix("http://").split(":")
        with httpx.Client(base_url=base) as remote:
            _use_up(remote, token)
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(
                (
                    f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n"
                ).encode()
            )
            answer = connection.recv(65536)  # within 5 s, or socket.timeout fails the test
    assert answer.startswith(b"HTTP/1.1 429"), answer


def _aliased(kind: str, count: int) -> dict[str, str]:
    """An operation of `count` aliased root fields: mutations (refused as they run, the client
    holding no write scope: counting comes before) or queries."""
    if kind == "mutation":
        field = 'deactivateMsme(id: "1", version: 1) { id }'
    else:
        field = "viewer { clientId }"
    return {"query": kind + " { " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"}


def test_each_root_field_of_a_mutation_counts_against_the_limit(
    limited: Api, demo_url: str
) -> None:
    """The attack: a batch of ten operations of 30 aliased `checkEligibility` stored 300
    decisions and their audit entries, counted as ten requests. Each root field of a mutation
    is a write of its own, and counts as one; a query counts once however many it has."""
    writer = _fresh_token(limited, demo_url)
    assert limited.post(_aliased("mutation", 15), writer).status_code == 200
    _assert_rate_limited(limited.post(_aliased("mutation", 6), writer))  # 15 + 6 > LIMIT
    # Spread from fragments too, each field once (the fragment spreads it twice).
    spread = _fresh_token(limited, demo_url)
    fields = " ".join(f'a{i}: deactivateMsme(id: "1", version: 1) {{ id }}' for i in range(15))
    fragments = {"query": f"mutation {{ ...F ...F }} fragment F on Mutation {{ {fields} }}"}
    assert limited.post(fragments, spread).status_code == 200
    _assert_rate_limited(limited.post(_aliased("mutation", 6), spread))
    reader = _fresh_token(limited, demo_url)
    for _ in range(2):  # 2 × 15 fields, counted as 2
        assert limited.post(_aliased("query", 15), reader).status_code == 200
    assert limited.post(_aliased("mutation", 6), reader).status_code == 200  # 2 + 6


def test_root_fields_a_mutation_skips_do_not_count(limited: Api, demo_url: str) -> None:
    """A root field turned off by `@skip(if: true)` or `@include(if: false)` (a literal, a
    variable, or a variable's default; on the field or on the fragment that selects it) writes
    nothing, but counted as a write: 15 such fields used up most of a day's limit."""
    field = 'deactivateMsme(id: "1", version: 1)'
    selected = f"{field} {{ id }}"
    skipped = [
        *(f"s{i}: {field} @skip(if: true) {{ id }}" for i in range(3)),
        *(f"i{i}: {field} @include(if: false) {{ id }}" for i in range(3)),
        *(f"v{i}: {field} @skip(if: $off) {{ id }}" for i in range(3)),
        *(f"d{i}: {field} @include(if: $unset) {{ id }}" for i in range(3)),
        f"... @skip(if: true) {{ f0: {selected} f1: {selected} }}",
        "...F @skip(if: $off)",
    ]
    query = (
        "mutation M($off: Boolean!, $unset: Boolean = false) { "
        + f"kept: {selected} "
        + " ".join(skipped)
        + f" }} fragment F on Mutation {{ g0: {selected} g1: {selected} }}"
    )
    token = _fresh_token(limited, demo_url)
    body = {"query": query, "variables": {"off": True}}
    assert limited.post(body, token).status_code == 200  # one write, counted once
    assert limited.post(_aliased("mutation", 15), token).status_code == 200  # 1 + 15
    _assert_rate_limited(limited.post(_aliased("mutation", 6), token))  # 16 + 6 > LIMIT
