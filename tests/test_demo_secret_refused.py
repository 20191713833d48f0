"""The published demo secret gets no token from a server outside development, whichever client
holds it: `serve` refuses to start while one does, but a demo client registered after it started
(`serve --dev` run once against its database) was handed tokens, `demo-walidata`'s national
audit trail with the NIKs in it among them."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from sinergi import app
from sinergi.app import create_app, refused_secret
from sinergi.demo_mode import DEMO_SECRET
from sinergi.graphiql import TOKEN_PATH
from sinergi.settings import Environment, Settings
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.http import LOOPBACK_PEER
from tests.support.served import free_port, wait_until_answering

CLIENT = "demo-walidata"
LOCAL = "http://127.0.0.1"  # a --dev server answers only a loopback name, not testserver


def _token(client: TestClient, secret: str) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    return client.post("/oauth/token", data=form, auth=(CLIENT, secret))


def test_a_demo_client_registered_after_a_production_server_started_gets_no_token(
    module_reference_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app, "refused_secret", refused_secret)  # conftest's suite accepts it
    production = create_app(
        Settings(rate_limit=1_000_000), database_url=as_service(module_reference_url)
    )
    with TestClient(production) as client:
        assert _token(client, DEMO_SECRET).status_code == 401  # no such client yet
        demo_clients(module_reference_url)  # `serve --dev` against the same database
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
    assert f"presented the published demo secret for client {CLIENT}: refused" in warnings[0]
    # Anyone can send it with any client id: no nudge to revoke a client that may be real, but
    # how to tell whether it holds the secret, and what then: revoke it, as `serve` says (one
    # holding the demo's secret is a demo client), not rotate it.
    condition = f"if {CLIENT}'s secret is the demo's"
    revoke = f"revoke it (`sinergi clients revoke {CLIENT}`)"
    otherwise = "; otherwise no action is needed"
    assert warnings[0].count("revoke") == 2, warnings[0]  # both in the one conditional step
    assert condition in warnings[0]
    assert warnings[0].index(condition) < warnings[0].index(revoke)
    assert warnings[0].index(revoke) + len(revoke) == warnings[0].index(otherwise)
    assert "the next `sinergi serve` without --dev refuses to start naming it" in warnings[0]
    assert "rotate" not in warnings[0]
    # SINERGI_ENV=development turns GraphiQL on, not the refusal off: `serve --dev` does.
    graphiql = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(create_app(graphiql, database_url=as_service(module_reference_url))) as client:
        assert _token(client, DEMO_SECRET).status_code == 401
    development = replace(graphiql, dev=True)
    with TestClient(
        create_app(development, database_url=as_service(module_reference_url)),
        base_url=LOCAL,
        client=LOOPBACK_PEER,
    ) as client:
        issued = _token(client, DEMO_SECRET)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "aggregates:read audit:read"


@pytest.mark.parametrize("dev", ["true", "1"])
def test_serve_with_sinergi_env_development_but_no_dev_refuses_later_demo_clients(
    fresh_url: str, tmp_path: Path, dev: str
) -> None:
    """Start-up refuses without --dev while a demo client exists, whatever SINERGI_ENV says; the
    endpoint followed SINERGI_ENV, so a server with SINERGI_ENV=development and no demo client at
    start handed tokens to demo clients registered later. One rule now: --dev. SINERGI_DEV of
    the shell's own is named as ignored (`1` stopped serve, read before serve set it)."""
    assert sinergi(fresh_url, "migrate")[0] == 0  # reference data, which clients name
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": as_service(fresh_url),
        "SINERGI_HOME": str(tmp_path),
        "SINERGI_ENV": "development",
        "SINERGI_DEV": dev,  # serve sets it from --dev alone, whatever it was
        "SINERGI_LOG_LEVEL": "warning",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr = (tmp_path / "stderr").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "sinergi.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, f"{base}/readyz", log=tmp_path / "stderr")
        demo_clients(fresh_url)  # `serve --dev` against the same database
        form = {"grant_type": "client_credentials"}
        answer = httpx.post(f"{base}/oauth/token", data=form, auth=(CLIENT, DEMO_SECRET))
        assert answer.status_code == 401, answer.text
        # GraphiQL (SINERGI_ENV=development) mints none either.
        refusal = httpx.post(f"{base}{TOKEN_PATH}")
        assert refusal.status_code == 403
        assert "refuses the published demo secret" in refusal.text
        # It says what serves the page, not only what to do instead.
        assert "GraphiQL is served only under `sinergi serve --dev`" in refusal.text
    finally:
        server.terminate()
        server.wait(60)
        stderr.close()
    said = (tmp_path / "stderr").read_text()
    assert f"SINERGI_DEV={dev} is ignored: `serve` sets it from --dev alone" in said, said


def test_a_production_server_refuses_the_tokens_a_dev_server_issued_to_a_demo_client(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `serve --dev` on the database of a production server signs with its keys: the demo
    clients' tokens it issued, demo-province-62's pii:read among them, were accepted by the
    production server, which refused only to issue them, and still were once the client was
    rotated, for the token's lifetime. The production server serves no demo client at all,
    whatever its secret: neither its tokens nor new ones for the rotated secret. A real client
    is untouched."""
    assert sinergi(fresh_url, "migrate")[0] == 0  # reference data, which clients name
    demo_clients(fresh_url)  # what `serve --dev` registers
    development = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000, dev=True)
    served = create_app(development, database_url=as_service(fresh_url))
    with TestClient(served, base_url=LOCAL, client=LOOPBACK_PEER) as client:
        issued = _token(client, DEMO_SECRET).json()["access_token"]
    code, out, _ = sinergi(fresh_url, "clients", "rotate", CLIENT, "--json")
    assert code == 0
    rotated_secret = json.loads(out)["client_secret"]
    create = ["clients", "create", "--name", "Badan Pusat Statistik", "--org-kind", "ministry"]
    create += ["--jurisdiction", "ID", "--purpose", "statistik nasional", "--json"]
    code, out, _ = sinergi(fresh_url, *create)
    assert code == 0
    real = json.loads(out)
    monkeypatch.setattr(app, "refused_secret", refused_secret)  # conftest's suite accepts it
    production = create_app(Settings(rate_limit=1_000_000), database_url=as_service(fresh_url))
    viewer = {"query": "{ viewer { clientId } }"}
    with TestClient(production) as client:
        for _ in range(2):  # the second from what the first left held
            refused = client.post("/graphql", json=viewer, headers=_bearer(issued))
            assert refused.status_code == 401, refused.text
            (error,) = refused.json()["errors"]
            assert error["extensions"] == {"code": "UNAUTHENTICATED"}
        rotated = _token(client, rotated_secret)
        assert rotated.status_code == 401, rotated.text
        assert rotated.json()["error"] == "invalid_client"
        form = {"grant_type": "client_credentials"}
        credentials = (real["client_id"], real["client_secret"])
        answer = client.post("/oauth/token", data=form, auth=credentials)
        assert answer.status_code == 200, answer.text
        served = client.post(
            "/graphql", json=viewer, headers=_bearer(answer.json()["access_token"])
        )
    assert served.json() == {"data": {"viewer": {"clientId": real["client_id"]}}}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
