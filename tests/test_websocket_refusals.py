"""A WebSocket turned away for now, not for good: over its client's rate limit, it is closed
with 1013 ("Try Again Later") and told when to come back, which graphql-ws clients retry with a
backoff, where they give up on 4403 for good."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sinergi.app import create_app
from sinergi.settings import Settings
from tests.support.clients import registered
from tests.support.databases import as_service

PROTOCOL = "graphql-transport-ws"
WINDOW_SECONDS = 60


@pytest.fixture
def client(module_reference_url: str) -> tuple[str, str]:
    return registered(module_reference_url, "Soket ditolak", purpose="refusal test", scopes="")


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
        assert _init(http, token)["type"] == "connection_ack"  # the window's one request
        refused = _init(http, token)
    assert refused["code"] == 1013, refused
    retry = re.fullmatch(r"RATE_LIMITED: retry in (\d+) s", refused["reason"])
    assert retry is not None, refused
    assert 1 <= int(retry[1]) <= WINDOW_SECONDS
