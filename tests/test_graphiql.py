"""GraphiQL only in development, served by Sinergi itself, already holding a demo token that
works and that the page can renew."""

from __future__ import annotations

import json
import re

from starlette.testclient import TestClient

from sinergi.app import create_app
from sinergi.graphiql import ASSETS_DIR, integrity
from sinergi.settings import Environment, Settings
from tests.support.databases import as_service
from tests.support.http import Api


def _viewer(client: TestClient, token: str) -> object:
    answer = client.post(
        "/graphql",
        json={"query": "{ viewer { clientId } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return answer.json()


def test_development_serves_graphiql_with_a_working_demo_token(demo_url: str, api: Api) -> None:
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        (token,) = re.findall(r'"token": "([^"]+)"', page.text)
        assert _viewer(client, token) == {"data": {"viewer": {"clientId": "demo-province-62"}}}

        renewed = client.post("/graphiql/token")
        assert renewed.headers["cache-control"] == "no-store"
        assert renewed.json()["expires_in"] == settings.token_lifetime_seconds
        fresh = renewed.json()["access_token"]
        assert _viewer(client, fresh) == {"data": {"viewer": {"clientId": "demo-province-62"}}}


def test_graphiql_loads_nothing_from_elsewhere_and_only_the_published_files(
    demo_url: str, api: Api
) -> None:
    """Every script and stylesheet comes from this server, with the integrity of the
    published npm file, and the server answers each with exactly those bytes."""
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"}).text
        references = re.findall(r'(?:src|href)="([^"]+)" integrity="([^"]+)"', page)
        assert len(references) == 4
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
        for url, expected in references:
            assert url.startswith("/graphiql/static/")
            served = client.get(url)
            assert served.status_code == 200
            assert integrity(served.content) == expected
        assert client.get("/graphiql/static/../graphiql.html").status_code == 404


def test_the_vendored_files_are_the_published_ones_with_their_licences() -> None:
    manifest = json.loads((ASSETS_DIR / "assets.json").read_text())
    for asset in manifest["assets"]:
        assert integrity((ASSETS_DIR / asset["file"]).read_bytes()) == asset["integrity"]
        assert "MIT License" in (ASSETS_DIR / asset["licence"]).read_text()


def test_production_serves_no_graphiql(api: Api) -> None:
    """A browser's GET is a GraphQL request there (JSON, refused without its token); a client
    that takes only HTML cannot be answered at all; no demo token is handed out."""
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = api.client.get("/graphql", headers={"Accept": browser})
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("application/json")
    assert "graphiql" not in page.text.lower()
    assert api.client.get("/graphql", headers={"Accept": "text/html"}).status_code == 406
    assert api.client.post("/graphiql/token").status_code == 404
    assert api.client.get("/graphiql/static/graphiql.min.js").status_code == 404
