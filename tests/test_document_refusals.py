"""A document with nothing to run is the client's mistake, refused by the request guard as
BAD_USER_INPUT naming `query`, alike over POST, GET, either media type, in a batch and over a
WebSocket: strawberry answered one with no operation in text/plain over HTTP and as INTERNAL,
with a logged traceback, over a WebSocket; one with an empty selection set, which the GraphQL
grammar forbids and graphql-core parses, ran and answered `{"data": {}}`."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sinergi.demo_mode import DEMO_SECRET
from tests.support.http import Api

CLIENT = "demo-province-62"

NOTHING_TO_RUN = [
    ("", "query: must not be empty"),
    ("  \n ", "query: must not be empty"),
    ("fragment F on Query { __typename }", "query: the document holds no operation"),
    ("type X { a: Int }", "query: the document holds no operation"),
    ("extend schema @foo", "query: the document holds no operation"),
    ("{ }", "query: a selection set must select at least one field"),
    ("query { }", "query: a selection set must select at least one field"),
    ("mutation { }", "query: a selection set must select at least one field"),
    ("{ viewer { } }", "query: a selection set must select at least one field"),
]


def _refusal(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/"), response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "query"
    return dict(error)


@pytest.mark.parametrize(("query", "message"), NOTHING_TO_RUN)
def test_a_document_with_nothing_to_run_is_refused_over_post(
    api: Api, query: str, message: str
) -> None:
    assert _refusal(api.post({"query": query}, api.token(CLIENT)))["message"] == message


@pytest.mark.parametrize(("query", "message"), NOTHING_TO_RUN[:6])
def test_a_document_with_nothing_to_run_is_refused_over_get_in_either_media_type(
    api: Api, query: str, message: str
) -> None:
    for accept in ("application/json", "application/graphql-response+json"):
        headers = {"Authorization": f"Bearer {api.token(CLIENT)}", "Accept": accept}
        response = api.client.get("/graphql", params={"query": query}, headers=headers)
        assert _refusal(response)["message"] == message


def test_a_batch_holding_a_document_with_nothing_to_run_is_refused_as_for_any_bad_entry(
    api: Api,
) -> None:
    """As the guard refuses a batch with any operation it refuses (a bad operationName, one
    over the cost): the batch runs whole or not at all."""
    batch = [{"query": "{ __typename }"}, {"query": ""}]
    assert _refusal(api.post(batch, api.token(CLIENT)))["message"] == "query: must not be empty"


@pytest.mark.parametrize(("query", "message"), NOTHING_TO_RUN)
def test_a_document_with_nothing_to_run_is_refused_over_a_websocket(
    api: Api, query: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), api.socket((CLIENT, DEMO_SECRET)) as socket:
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        refused = socket.receive_json()
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
    assert refused["type"] == "error", refused
    (error,) = refused["payload"]
    assert error == {
        "message": message,
        "extensions": {"code": "BAD_USER_INPUT", "field": "query"},
    }
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize("query", ["{ viewer { clientId } }", "mutation { __typename }"])
def test_a_query_or_mutation_over_a_websocket_is_bad_user_input_on_query(
    api: Api, query: str
) -> None:
    """As a subscription sent over POST is: the operation came the wrong way, which no scope
    would change (it was FORBIDDEN)."""
    with api.socket((CLIENT, DEMO_SECRET)) as socket:
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        answer = socket.receive_json()
    errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
    (error,) = errors
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
    assert error["message"].startswith("query: only subscriptions run over a WebSocket")


ENROL = """mutation($input: ParticipationInput!) {
  addParticipation(input: $input) { id } }"""


def test_a_mutation_carrying_a_nul_over_a_websocket_never_reaches_the_database(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """graphql-transport-ws carries mutations: one whose programme id holds a NUL, in a
    variable or in the document, is refused by the request guard's checks, as over POST,
    with no error logged (asyncpg refusing the NUL would log INTERNAL)."""
    enrolment = {"programmeId": "PR-MMM\x00", "cooperativeId": "1", "role": "producer"}
    literal = 'mutation { addParticipation(input: {programmeId: "PR-MMM\\u0000",'
    literal += ' cooperativeId: "1", role: "producer"}) { id } }'
    payloads = [{"query": ENROL, "variables": {"input": enrolment}}, {"query": literal}]
    with caplog.at_level(logging.ERROR), api.socket((CLIENT, DEMO_SECRET)) as socket:
        for number, payload in enumerate(payloads):
            socket.send_json({"id": str(number), "type": "subscribe", "payload": payload})
            refused = socket.receive_json()
            assert refused["type"] == "error", refused
            (error,) = refused["payload"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
