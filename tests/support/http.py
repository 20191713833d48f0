"""The real ASGI app over HTTP (Starlette's TestClient runs its lifespan), with token helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.testclient import TestClient

from sinergi.demo_mode import DEMO_SECRET


@dataclass
class Api:
    client: TestClient
    _tokens: dict[tuple[str, str | None], str] = field(default_factory=dict)

    def token_response(
        self, client_id: str, secret: str = DEMO_SECRET, scope: str | None = None
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        return self.client.post("/oauth/token", data=form, auth=(client_id, secret))

    def token(self, client_id: str, scope: str | None = None) -> str:
        """A token for a demo client, issued once per test session."""
        key = (client_id, scope)
        if key not in self._tokens:
            response = self.token_response(client_id, scope=scope)
            assert response.status_code == 200, response.text
            self._tokens[key] = response.json()["access_token"]
        return self._tokens[key]

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
