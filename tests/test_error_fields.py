"""Every input error names its field (`extensions.field`, and first in the message), those the
GraphQL engine raises included: a required argument or input field left out is named as it
would have been given (`nib`, `input.nib`), where graphql-core reports it on the field or the
object lacking it; an error about the document itself (a syntax error, a field the type lacks)
names `query`. Over POST and over a WebSocket alike."""

from __future__ import annotations

from typing import Any

import pytest

from sinergi.demo_mode import DEMO_SECRET
from tests.support.http import Api

CLIENT = "demo-province-62"
CREATE = "mutation($i: CreateMsmeInput!) { createMsme(input: $i) { id } }"
WITHOUT_NIB = {"name": "x", "kbliCode": "10794", "region": "62.71"}

CASES: list[tuple[str, dict[str, Any] | None, str]] = [
    ("{ msme { name } }", None, "nib"),
    (
        'mutation { createMsme(input: {name: "x", kbliCode: "10794", region: "62.71"}) { id } }',
        None,
        "input.nib",
    ),
    (CREATE, {"i": WITHOUT_NIB}, "input.nib"),
    (
        CREATE,
        {"i": {**WITHOUT_NIB, "nib": "7796000000001", "owner": {"nik": "1"}}},
        "input.owner.fullName",
    ),
    ("{ viewer { ", None, "query"),
    ("{ nope }", None, "query"),
    ('{ msme(nib: "7796000000001") { nope } }', None, "query"),
]


def _named(error: dict[str, Any], field: str) -> None:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert error["message"].startswith(f"{field}: "), error


@pytest.mark.parametrize(("query", "variables", "field"), CASES)
def test_an_engine_input_error_names_its_field_over_post(
    api: Api, query: str, variables: dict[str, Any] | None, field: str
) -> None:
    response = api.post({"query": query, "variables": variables}, api.token(CLIENT))
    (error,) = response.json()["errors"]
    _named(error, field)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("subscription { msmeChanges { entries { id } ", "query"),
        ("subscription { nope }", "query"),
        ("subscription { msmeChanges(after: 5) { endCursor } }", "after"),
    ],
)
def test_an_engine_input_error_names_its_field_over_a_websocket(
    api: Api, query: str, field: str
) -> None:
    with api.socket((CLIENT, DEMO_SECRET)) as socket:
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        answer = socket.receive_json()
    errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
    (error,) = errors
    _named(error, field)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("{ msmes(first: 2147483647) { nodes { nib } } }", "must be between 1 and 100"),
        ("{ msmes(first: 1000) { nodes { nib } } }", "must be between 1 and 100"),
        ("{ msmeChanges(first: 2147483647) { endCursor } }", "must be between 1 and 1000"),
    ],
)
def test_a_page_size_out_of_range_is_refused_naming_first_however_large(
    api: Api, query: str, reason: str
) -> None:
    """Not QUERY_TOO_COMPLEX "found 50002": a page its resolver refuses reads nothing, and the
    client learns the range to keep to."""
    response = api.post({"query": query}, api.token(CLIENT))
    (error,) = response.json()["errors"]
    _named(error, "first")
    assert error["message"].startswith(f"first: {reason}"), error
