"""A WebSocket turned away for now, not for good: over its client's rate limit, or with the
database away at `connection_init`, it is closed with 1013 ("Try Again Later") and told when to
come back, which graphql-ws clients retry with a backoff, where they give up on 4403 for good.
A subscribe message met by an outage is refused alone, and a running subscription met by one
ends alone with an `error` message, the connection kept."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from auth.registry import ClientRegistry
from db.queries import change_feed as change_feed_queries
from db.queries import rate_limits, trusted_documents
from sinergi import subscriptions
from sinergi.app import create_app
from sinergi.rate_limit import service_unavailable
from sinergi.settings import Settings
from tests.support.clients import registered
from tests.support.databases import as_service
from tests.support.windows import clear_of_an_edge

PROTOCOL = "graphql-transport-ws"
WINDOW_SECONDS = 60


@pytest.fixture
def client(module_reference_url: str) -> tuple[str, str]:
    return registered(
        module_reference_url, "Soket ditolak", purpose="refusal test", scopes="aggregates:read"
    )


@contextlib.contextmanager
def _served(url: str, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database_url=as_service(url))) as http:
        yield http


def _token(http: TestClient, client: tuple[str, str]) -> str:
    issued = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client)
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def _init(http: TestClient, token: str) -> dict[str, Any]:
    """What answers `connection_init`: the ack, or the close (`code`, `reason`)."""
    with http.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as socket:
        socket.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        try:
            return dict(socket.receive_json())
        except WebSocketDisconnect as closed:
            return {"code": closed.code, "reason": closed.reason}


def test_a_websocket_over_the_rate_limit_is_told_to_retry_later_with_when(
    module_reference_url: str, client: tuple[str, str]
) -> None:
    """It was closed 4403 Forbidden, the code of a bad token (strawberry closes every
    ConnectionRejectionError so), though the contract answers RATE_LIMITED with a retry time."""
    settings = Settings(rate_limit=1, rate_limit_window_seconds=WINDOW_SECONDS)
    with _served(module_reference_url, settings) as http:
        token = _token(http, client)
        clear_of_an_edge(WINDOW_SECONDS, margin=5)  # both in one window
        assert _init(http, token)["type"] == "connection_ack"  # the window's one request
        refused = _init(http, token)
    assert refused["code"] == 1013, refused
    retry = re.fullmatch(r"RATE_LIMITED: retry in (\d+) s", refused["reason"])
    assert retry is not None, refused
    assert 1 <= int(retry[1]) <= WINDOW_SECONDS


async def _database_gone(*_: object, **__: object) -> None:
    raise ConnectionResetError("the database went away")


OUTAGES = {
    "the token's client unread": (ClientRegistry, "state"),
    "the connection uncounted": (rate_limits, "add"),
}
SERVED = Settings(rate_limit=1_000_000)


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_a_database_outage_at_connection_init_closes_it_with_try_again_later(
    module_reference_url: str,
    client: tuple[str, str],
    outage: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The registry's reading for the token failed through to the socket: dropped without a
    close code, with "Exception in ASGI application" and a traceback in the log."""
    with _served(module_reference_url, SERVED) as http:
        token = _token(http, client)
        monkeypatch.setattr(*OUTAGES[outage], _database_gone)
        with caplog.at_level(logging.ERROR):
            refused = _init(http, token)
    assert refused == {"code": 1013, "reason": "SERVICE_UNAVAILABLE: retry in 5 s"}
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []


PERSISTED = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}}
"""A subscribe naming its document by hash: resolving it reads the registered documents."""


@pytest.mark.parametrize(
    ("subscribe", "gone"),
    [
        ({"query": "subscription { msmeChanges { endCursor } }"}, (ClientRegistry, "state")),
        (PERSISTED, (trusted_documents, "find")),
    ],
    ids=["token recheck", "persisted document"],
)
def test_a_database_outage_at_a_subscribe_message_refuses_it_and_keeps_the_connection(
    module_reference_url: str,
    client: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    subscribe: dict[str, Any],
    gone: tuple[object, str],
) -> None:
    """The token's recheck for each subscribe message, and a persisted document's lookup,
    failed through to the socket as well."""
    with _served(module_reference_url, SERVED) as http:
        token = _token(http, client)
        with (
            caplog.at_level(logging.ERROR),
            http.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as socket,
        ):
            socket.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            assert socket.receive_json()["type"] == "connection_ack"
            with monkeypatch.context() as away:
                away.setattr(*gone, _database_gone)
                socket.send_json({"id": "1", "type": "subscribe", "payload": subscribe})
                refused = socket.receive_json()
                socket.send_json({"type": "ping"})
                assert socket.receive_json() == {"type": "pong"}
    assert refused["type"] == "error", refused
    assert refused["id"] == "1"
    assert [error["extensions"]["code"] for error in refused["payload"]] == ["SERVICE_UNAVAILABLE"]
    assert [
        record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR
    ] == []


MIDSTREAM = {
    "token recheck": (ClientRegistry, "state"),
    "next page": (change_feed_queries, "page"),
}
"""What a running subscription reads before each page: its client in the registry (the token's
recheck), then the page."""


def _until_pong(socket: Any) -> list[dict[str, Any]]:
    """What the connection sent before it answered a ping: one that answers is still open."""
    socket.send_json({"type": "ping"})
    sent = []
    while (message := socket.receive_json()) != {"type": "pong"}:
        sent.append(message)
    return sent


@pytest.mark.parametrize("gone", list(MIDSTREAM))
def test_a_database_outage_in_a_running_subscription_ends_it_with_an_error_alone(
    module_reference_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    gone: str,
) -> None:
    """A running subscription reads the database before each page. Met by an outage there, it
    went out as a `next` of no data, then `complete`, where the contract answers an outage on a
    WebSocket with an `error` message; and the check that closes the connection of a lapsed
    token once a subscription ends raised unlogged in strawberry's task."""
    reader = registered(
        module_reference_url, "Soket putus", purpose="outage test", scopes="records:read"
    )
    monkeypatch.setattr(subscriptions, "RECHECK_SECONDS", 0.05)
    subscribe = {"query": "subscription { msmeChanges { endCursor } }"}
    with _served(module_reference_url, SERVED) as http:
        token = _token(http, reader)
        with (
            caplog.at_level(logging.INFO),
            http.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as socket,
        ):
            socket.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            assert socket.receive_json()["type"] == "connection_ack"
            socket.send_json({"id": "1", "type": "subscribe", "payload": subscribe})
            assert _until_pong(socket) == []  # running, with nothing to send yet
            with monkeypatch.context() as away:
                away.setattr(*MIDSTREAM[gone], _database_gone)
                time.sleep(0.5)  # ten rechecks' time
                ended = _until_pong(socket)
            socket.send_json({"id": "1", "type": "subscribe", "payload": subscribe})
            assert _until_pong(socket) == []  # subscribed again, on the same connection
    assert [message["type"] for message in ended] == ["error"], ended
    assert ended[0]["id"] == "1"
    assert ended[0]["payload"] == service_unavailable().errors
    assert [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if "unavailable" in record.getMessage() or record.levelno >= logging.ERROR
    ] == [("WARNING", "the database is unavailable: the database went away")]


def test_a_connection_init_with_a_null_payload_is_acknowledged_by_its_upgrades_token(
    module_reference_url: str, client: tuple[str, str]
) -> None:
    """graphql-transport-ws lets `payload` be null; strawberry closed such a connection_init
    with 4400, so a client sending its token in the upgrade request's header, with nothing to
    put in the payload, could not connect."""
    with _served(module_reference_url, Settings(rate_limit=1_000_000)) as http:
        headers = {"Authorization": f"Bearer {_token(http, client)}"}
        for init in ({"type": "connection_init", "payload": None}, {"type": "connection_init"}):
            with http.websocket_connect(
                "/graphql", subprotocols=[PROTOCOL], headers=headers
            ) as socket:
                socket.send_json(init)
                assert socket.receive_json()["type"] == "connection_ack"
