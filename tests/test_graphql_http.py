"""The rules of sinergi.graphql_http on their own: negotiation, GET parameters, the settled
answer and its status. HTTP behaviour is tested in test_graphql_over_http.py."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.http import GraphQLHTTPResponse

from sinergi.graphql_http import (
    BadParameter,
    MediaType,
    get_parameters,
    is_mutation,
    negotiate,
    settled,
    status,
    wants_html,
    withheld,
)

GRAPHQL_RESPONSE, JSON = MediaType.GRAPHQL_RESPONSE, MediaType.JSON


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("APPLICATION/JSON", JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json;q=0.9, application/json", JSON),
        ("application/graphql-response+json, */*;q=0.5", GRAPHQL_RESPONSE),
        ("application/json;q=0.1, */*", GRAPHQL_RESPONSE),  # JSON named at 0.1, the other at 1
        ("application/graphql-response+json;q=0.1, application/*", JSON),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE),  # JSON refused by name
        ("application/json; charset=latin-1, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("text/html", None),
        ("application/json;q=0", None),
        ("application/json;q=abc", None),
        ("application/json;q=2", None),
        ("application/json; charset=latin-1", None),
        ("image/*, text/*", None),
    ],
)
def test_negotiate_follows_the_weights_and_the_audited_defaults(
    accept: str | None, chosen: MediaType | None
) -> None:
    assert negotiate(accept) is chosen


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("text/html", True),
        ("text/html;q=0.5, application/json", False),
        ("*/*", False),
        ("text/*", False),
        (None, False),
        ("application/json", False),
        ("text/html;q=0", False),
    ],
)
def test_only_a_client_naming_html_first_is_a_browser(accept: str | None, html: bool) -> None:
    assert wants_html(accept) is html


def test_get_parameters_are_those_a_post_body_would_carry() -> None:
    found = get_parameters(
        b"query=query+Q%28%24c%3AString%21%29%7Bregion%28code%3A%24c%29%7Bname%7D%7D"
        b"&operationName=Q&variables=%7B%22c%22%3A%2262%22%7D&extensions=%7B%7D&other=x"
    )
    assert found == {
        "query": "query Q($c:String!){region(code:$c){name}}",
        "operationName": "Q",
        "variables": {"c": "62"},
        "extensions": {},
    }


def test_empty_get_parameters_mean_none_except_the_query() -> None:
    assert get_parameters(b"query=&operationName=&variables=&extensions=") == {"query": ""}
    assert get_parameters(b"") == {}


@pytest.mark.parametrize(
    ("query_string", "parameter"),
    [
        (b"query=a&query=b", "query"),
        (b"query=a&variables=%7Bx", "variables"),
        (b"query=a&extensions=nope", "extensions"),
        (b"query=%FF", "query string"),
    ],
)
def test_get_parameters_that_cannot_be_read_are_named(query_string: bytes, parameter: str) -> None:
    found = get_parameters(query_string)
    assert isinstance(found, BadParameter)
    assert found.parameter == parameter


@pytest.mark.parametrize(
    ("operation", "mutation"),
    [
        ({"query": "{ viewer { clientId } }"}, False),
        ({"query": "mutation { x }"}, True),
        ({"query": "subscription { x }"}, True),
        ({"query": "query A { a } mutation B { b }", "operationName": "A"}, False),
        ({"query": "query A { a } mutation B { b }", "operationName": "B"}, True),
        ({"query": "query A { a } mutation B { b }"}, False),  # no operation selected
        ({"query": "mutation {"}, False),  # a syntax error: the engine reports it
        ({"extensions": {}}, False),
    ],
)
def test_is_mutation_reads_the_operation_the_request_selects(
    operation: dict[str, Any], mutation: bool
) -> None:
    assert is_mutation(operation, max_tokens=100) is mutation


ERROR: dict[str, Any] = {"message": "x", "extensions": {"code": "BAD_USER_INPUT"}}
FIELD_ERROR: dict[str, Any] = {
    "message": "x",
    "path": ["msmes"],
    "extensions": {"code": "FORBIDDEN"},
}
OUTAGE: dict[str, Any] = {
    "message": "x",
    "path": ["a"],
    "extensions": {"code": "SERVICE_UNAVAILABLE"},
}


def _answer(**entries: Any) -> GraphQLHTTPResponse:
    answer: GraphQLHTTPResponse = {**entries}  # type: ignore[typeddict-item]
    return answer


def test_a_request_error_loses_its_data_entry_and_a_field_error_keeps_it() -> None:
    assert settled(_answer(data=None, errors=[ERROR])) == {"errors": [ERROR]}
    partial = _answer(data={"msmes": None}, errors=[FIELD_ERROR])
    assert settled(partial) == partial
    null_root = _answer(data=None, errors=[FIELD_ERROR])
    assert settled(null_root) == null_root
    assert settled(_answer(data={"a": 1})) == {"data": {"a": 1}}


def test_an_answer_cut_short_by_an_outage_loses_its_partial_data() -> None:
    assert settled(_answer(data={"a": None, "b": 2}, errors=[OUTAGE])) == {"errors": [OUTAGE]}


def _failed(*path: str | int) -> dict[str, Any]:
    return {"message": "x", "path": list(path), "extensions": {"code": "BAD_USER_INPUT"}}


def test_a_withheld_answer_keeps_only_the_errors_naming_a_write_that_failed() -> None:
    answer = _answer(
        data={"a": None, "b": {"big": "x" * 100}},
        errors=[_failed("a"), _failed("b", "owner")],
    )
    bound = {"message": "over", "extensions": {"code": "QUERY_TOO_COMPLEX"}}
    assert withheld(answer, bound) == {"data": None, "errors": [bound, _failed("a")]}


@pytest.mark.parametrize(
    ("answer", "as_json", "as_graphql_response"),
    [
        (_answer(data={"a": 1}), 200, 200),
        (_answer(data={"msmes": None}, errors=[FIELD_ERROR]), 200, 200),
        (_answer(data=None, errors=[FIELD_ERROR]), 200, 200),
        (_answer(errors=[ERROR]), 200, 400),
        (_answer(errors=[{"extensions": {"code": "QUERY_TOO_COMPLEX"}}]), 400, 400),
        (_answer(errors=[{"extensions": {"code": "INTERNAL"}}]), 200, 500),
        (_answer(errors=[{"extensions": {"code": "FORBIDDEN"}}, ERROR]), 200, 403),
        (_answer(errors=[OUTAGE]), 503, 503),
        ([_answer(data={"a": 1}), _answer(errors=[ERROR])], 200, 200),
        ([_answer(data={"a": 1}), _answer(errors=[OUTAGE])], 503, 503),
    ],
)
def test_status_follows_the_specification_for_each_media_type(
    answer: GraphQLHTTPResponse | list[GraphQLHTTPResponse], as_json: int, as_graphql_response: int
) -> None:
    assert status(answer, JSON) == as_json
    assert status(answer, GRAPHQL_RESPONSE) == as_graphql_response
