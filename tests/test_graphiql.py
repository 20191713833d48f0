"""GraphiQL only in development, served by Sinergi itself, already holding a demo token that
works and that the page can renew."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
from unittest import mock

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from db.engine import async_url
from sinergi.app import create_app
from sinergi.cli import main
from sinergi.demo_mode import register_demo_clients
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


def _cli(url: str, *argv: str) -> int:
    with (
        mock.patch.dict(os.environ, {"DATABASE_URL": url}),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        return main(list(argv))


@pytest.mark.parametrize("command", ["rotate", "revoke"])
def test_graphiql_hands_out_no_token_once_the_demo_client_has_a_new_secret_or_none(
    fresh_url: str, command: str
) -> None:
    """`/graphiql/token` asks for no credentials: it mints only while the demo client is active
    with the published demo secret, checked at each mint, not only when the server started."""
    assert _cli(fresh_url, "migrate") == 0

    async def register() -> None:
        engine = create_async_engine(async_url(fresh_url))
        await register_demo_clients(engine)
        await engine.dispose()

    asyncio.run(register())
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(fresh_url))) as client:
        assert client.post("/graphiql/token").status_code == 200
        assert _cli(fresh_url, "clients", command, "demo-province-62") == 0
        for refused in (
            client.post("/graphiql/token"),
            client.get("/graphql", headers={"Accept": "text/html"}),
        ):
            assert refused.status_code == 403, refused.text
            assert refused.headers["cache-control"] == "no-store"
            answer = refused.json()
            assert answer["error"] == "access_denied"
            assert "only while it holds the published demo secret" in answer["error_description"]
            assert set(answer) == {"error", "error_description"}


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
