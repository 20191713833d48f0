"""Operation names, which callers choose, go into metrics labels, the access log and the
append-only audit trail. Each is a GraphQL Name of at most 128 characters, refused otherwise
before anything records it, and only a name the request's document holds is recorded: the
attack was a refused request whose 1.5 MB name became a label of every scrape, and a records
query whose 95,000-character name became a row nobody can delete."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from db.engine import create_engine
from sinergi import metrics
from tests.support.access_log import captured
from tests.support.http import Api

CLIENT = "demo-province-62"
UNKNOWN_HASH = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
RECORDS = "{ msmes(first: 1) { nodes { nib } } }"


def _labels() -> set[str]:
    """Every operation label of every series this process holds."""
    return {
        sample.labels["operation"]
        for family in REGISTRY.collect()
        for sample in family.samples
        if "operation" in sample.labels
    }


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """The access log's lines, as JSON, while the test runs."""
    with captured() as stream:
        yield stream


def _logged_operations(stream: io.StringIO) -> list[str | None]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line["operation"] for line in lines if line["path"] == "/graphql"]


def _post(api: Api, body: Any) -> httpx.Response:
    return api.post(body, api.token(CLIENT))


LONG = "M000" + "x" * 150_000
REFUSED_NAMES: dict[str, tuple[str, Any]] = {
    # case → (the name no label, log line or audit entry may hold, the request body)
    "a long name beside an unknown hash": (
        LONG,
        {"operationName": LONG, "extensions": UNKNOWN_HASH},
    ),
    "a long name beside a document": (
        LONG,
        {"query": f"query {LONG} {RECORDS}", "operationName": LONG},
    ),
    "a long name in a batch": (
        LONG,
        [{"query": "{ __typename }"}, {"operationName": LONG, "extensions": UNKNOWN_HASH}],
    ),
    "129 characters": ("A" * 129, {"query": "{ __typename }", "operationName": "A" * 129}),
    "not a name": ("Ops-1", {"query": "{ __typename }", "operationName": "Ops-1"}),
    "a space": ("Ops 1", {"operationName": "Ops 1", "extensions": UNKNOWN_HASH}),
    "a letter outside ASCII": ("Opé", {"query": "{ __typename }", "operationName": "Opé"}),
    "empty": ("", {"query": "{ __typename }", "operationName": ""}),
}


@pytest.mark.parametrize("case", list(REFUSED_NAMES))
def test_an_operation_name_that_is_no_short_graphql_name_is_refused_before_it_is_recorded(
    api: Api, access_log: io.StringIO, case: str
) -> None:
    name, body = REFUSED_NAMES[case]
    response = _post(api, body)
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "operationName"}
    assert len(error["message"]) < 200  # the name is not echoed back
    assert _logged_operations(access_log) == [None]
    if name:
        assert not any(name in label for label in _labels())
    assert max(map(len, _labels())) <= 128


def test_a_document_declaring_a_name_over_128_characters_is_refused_and_not_audited(
    api: Api, demo_url: str, access_log: io.StringIO
) -> None:
    """The second attack needs no `operationName`: the document names its operation. A name of
    128 characters is still one."""
    longest, too_long = "N" * 128, "N" * 129
    refused = _post(api, {"query": f"query {too_long} {RECORDS}"})
    assert refused.status_code == 400, refused.text
    (error,) = refused.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
    assert too_long not in error["message"]
    other = f"query Short {{ __typename }} query {too_long} {RECORDS}"  # even one not run
    assert _post(api, {"query": other, "operationName": "Short"}).status_code == 400
    accepted = _post(api, {"query": f"query {longest} {RECORDS}"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["data"]["msmes"]["nodes"]
    assert _logged_operations(access_log) == [None, None, longest]
    assert _audited(demo_url, too_long) == 0
    assert _audited(demo_url, longest) >= 1


def _audited(url: str, name: str) -> int:
    async def count() -> int:
        engine = create_engine(url, statement_timeout_ms=10_000)
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    text("SELECT count(*) FROM audit_log WHERE entry->>'operation' = :name"),
                    {"name": name},
                )
                return int(found.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_a_name_no_document_was_found_to_hold_is_counted_as_other(
    api: Api, access_log: io.StringIO
) -> None:
    """A hash no trusted document answers is refused once the guard has passed it: its name,
    however well formed, is the caller's invention, and would take one of its client's 200
    labels."""
    counted = {"operation": metrics.OTHER, "client_id": CLIENT, "status": "400"}
    before = REGISTRY.get_sample_value("sinergi_graphql_requests_total", counted) or 0.0
    invented = "InventedByTheCallerNotInAnyDocument"
    response = _post(api, {"operationName": invented, "extensions": UNKNOWN_HASH})
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["field"] == "extensions.persistedQuery.sha256Hash"
    assert REGISTRY.get_sample_value("sinergi_graphql_requests_total", counted) == before + 1
    assert invented not in _labels()
    assert _logged_operations(access_log) == [metrics.OTHER]


def test_a_label_is_never_a_name_the_guard_would_refuse() -> None:
    """Whatever reaches the metrics, a name that is no short GraphQL Name takes no label."""
    for refused in (LONG, "A" * 129, "Ops-1", ""):
        assert metrics.operation_label(refused, CLIENT) == metrics.OTHER
    assert metrics.operation_label("(batch)", CLIENT) == "(batch)"


def test_one_client_inventing_names_takes_no_other_clients_labels(api: Api) -> None:
    """The cap on names is each client's: a client sending 200 made-up names fills its own
    slots, and another client's new operation is still counted under its name."""
    flooder = "demo-province-61"
    token = api.token(flooder)
    for number in range(metrics.MAX_OPERATION_NAMES + 1):
        junk = api.post({"query": f"query Junk{number} {{ __typename }}"}, token)
        assert junk.status_code == 200, junk.text
    assert "Junk0" in _labels()
    assert f"Junk{metrics.MAX_OPERATION_NAMES}" not in _labels()

    fresh = "FreshAfterTheFlood"
    answer = _post(api, {"query": f"query {fresh} {{ __typename }}"})
    assert answer.status_code == 200, answer.text
    counted = {"operation": fresh, "client_id": CLIENT, "status": "200"}
    assert REGISTRY.get_sample_value("sinergi_graphql_requests_total", counted) == 1.0
