"""The published demo secret gets no token from a server outside development, whichever client
holds it: `serve` refuses to start while one does, but a demo client registered after it started
(`serve --dev` run once against its database) was handed tokens, `demo-walidata`'s national
audit trail with the NIKs in it among them."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from db.engine import async_url
from sinergi import app
from sinergi.app import create_app, refused_secret
from sinergi.demo_mode import DEMO_SECRET, register_demo_clients
from sinergi.settings import Environment, Settings
from tests.support.databases import as_service

CLIENT = "demo-walidata"


def _token(client: TestClient, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    return client.post("/oauth/token", data=form, auth=(CLIENT, secret))


def _register_demo_clients(url: str) -> None:
    async def register() -> None:
        engine = create_async_engine(async_url(url))
        try:
            await register_demo_clients(engine)
        finally:
            await engine.dispose()

    asyncio.run(register())


def test_a_demo_client_registered_after_a_production_server_started_gets_no_token(
    module_reference_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app, "refused_secret", refused_secret)  # conftest's suite accepts it
    production = create_app(
        Settings(rate_limit=1_000_000), database_url=as_service(module_reference_url)
    )
    with TestClient(production) as client:
        assert _token(client, DEMO_SECRET).status_code == 401  # no such client yet
        _register_demo_clients(module_reference_url)  # `serve --dev` against the same database
        wrong = _token(client, "not-the-secret")
        with caplog.at_level(logging.WARNING, logger="sinergi.auth"):
            refused = [_token(client, DEMO_SECRET) for _ in range(2)]
    for answer in refused:  # a wrong secret's answer: no sign the client holds the demo secret
        assert answer.status_code == wrong.status_code == 401
        assert (
            answer.json()
            == wrong.json()
            == {
                "error": "invalid_client",
                "error_description": "client authentication failed",
            }
        )
        assert answer.headers["www-authenticate"] == wrong.headers["www-authenticate"]
    warnings = [record.getMessage() for record in caplog.records if CLIENT in record.getMessage()]
    assert len(warnings) == 1, warnings  # once, however often it is presented
    assert f"sinergi clients revoke {CLIENT}" in warnings[0]
    development = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(
        create_app(development, database_url=as_service(module_reference_url))
    ) as client:
        issued = _token(client, DEMO_SECRET)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "aggregates:read audit:read"
