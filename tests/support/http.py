"""The real ASGI app over HTTP (Starlette's TestClient runs its lifespan), with token helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from starlette.testclient import TestClient

from sinergi.demo_mode import DEMO_SECRET
from tests.support.databases import as_service

if TYPE_CHECKING:
    from sinergi.settings import Settings


LOOPBACK_PEER = ("127.0.0.1", 50000)
"""The peer address of a TestClient acting as a browser on this machine: GraphiQL and a whole
`serve --dev` answer only a loopback one (sinergi.loopback), and TestClient's own, testclient,
is none."""


@dataclass
class Api:
    client: TestClient
    _tokens: dict[tuple[str, str | None], tuple[str, float]] = field(default_factory=dict)
    """Each token issued, with the monotonic time it is renewed at."""

    def token_response(
        self, client_id: str, secret: str = DEMO_SECRET, scope: str | None = None
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        return self.client.post("/oauth/token", data=form, auth=(client_id, secret))

    def token(self, client_id: str, scope: str | None = None) -> str:
        """A token for a demo client, issued once and again when three quarters of its life
        have passed: a session on a busy machine outlasts a token's 15 minutes."""
        key = (client_id, scope)
        token, renew_at = self._tokens.get(key, ("", 0.0))
        if time.monotonic() >= renew_at:
            response = self.token_response(client_id, scope=scope)
            assert response.status_code == 200, response.text
            issued = response.json()
            token = issued["access_token"]
            self._tokens[key] = token, time.monotonic() + issued["expires_in"] * 3 / 4
        return token

    def post(self, body: Any, token: str | None) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.client.post("/graphql", json=body, headers=headers)

    def graphql(
        self, query: str, client_id: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self.post({"query": query, "variables": variables}, self.token(client_id))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    @contextmanager
    def socket(self, client: tuple[str, str]) -> Iterator[Any]:
        """An acknowledged graphql-transport-ws connection for the client (id, secret)."""
        issued = self.token_response(*client)
        assert issued.status_code == 200, issued.text
        protocols = ["graphql-transport-ws"]
        with self.client.websocket_connect("/graphql", subprotocols=protocols) as socket:
            auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}
            socket.send_json({"type": "connection_init", "payload": auth})
            assert socket.receive_json()["type"] == "connection_ack"
            yield socket


@contextmanager
def served(url: str, settings: Settings | None = None) -> Iterator[Api]:
    """The app over the database at `url` (the owner's), connecting as the service role as
    `sinergi serve` does, with `settings` (by default a rate limit no test reaches, and
    `/metrics` open for the tests that scrape it)."""
    # Imported here, as conftest does: collecting the tests need not load the app.
    from sinergi.app import create_app
    from sinergi.settings import Settings

    settings = settings or Settings(rate_limit=1_000_000, metrics_open=True)
    app = create_app(settings, database_url=as_service(url))
    # A --dev server answers only a loopback name, and TestClient's own, testserver, is none.
    base_url = "http://127.0.0.1" if settings.dev else "http://testserver"
    peer = LOOPBACK_PEER if settings.dev else ("testclient", 50000)
    with TestClient(app, base_url=base_url, client=peer) as client:
        yield Api(client)
