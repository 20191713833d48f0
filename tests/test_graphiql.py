"""GraphiQL only in development, already holding a demo token that works."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from sinergi.app import create_app
from sinergi.settings import Environment, Settings
from tests.support.databases import as_service
from tests.support.http import Api


def test_development_serves_graphiql_with_a_working_demo_token(demo_url: str, api: Api) -> None:
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        (token,) = re.findall(r'"Authorization": "Bearer ([^"]+)"', page.text)
        answer = client.post(
            "/graphql",
            json={"query": "{ viewer { clientId } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.json() == {"data": {"viewer": {"clientId": "demo-province-62"}}}


def test_production_serves_no_graphiql(api: Api) -> None:
    """A browser's GET is a GraphQL request there (JSON, refused without its query); a client
    that takes only HTML cannot be answered at all."""
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = api.client.get("/graphql", headers={"Accept": browser})
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("application/json")
    assert "graphiql" not in page.text.lower()
    assert api.client.get("/graphql", headers={"Accept": "text/html"}).status_code == 406
