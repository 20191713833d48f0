"""A server holding the published demo secrets (`serve --dev`) answers only a request addressed to
this machine by a loopback name, on every path and on the WebSocket: a page of another site whose
name was made to resolve to 127.0.0.1 (DNS rebinding) is same-origin with the server, so it could
otherwise take a token with the published secret and read what the token reads. And GraphiQL's
demo token counts against the cap on a client's tokens, as the token endpoint's do."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from auth.clients import DEMO_SECRET
from sinergi.app import Sinergi, create_app
from sinergi.demo_mode import GRAPHIQL_CLIENT_ID
from sinergi.settings import Environment, Settings
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.served import free_port, served_process, wait_until_answering

REBOUND = "rebind.attacker.example"
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": GRAPHIQL_CLIENT_ID,
    "client_secret": DEMO_SECRET,
}
VIEWER = {"query": "{ viewer { clientId } }"}


def _register_demo_clients(url: str) -> None:
    demo_clients(url)


@pytest.fixture(scope="module")
def dev_server(module_reference_url: str) -> Iterator[str]:
    """A development server with the demo clients and their published secret (`serve --dev`'s
    workers: SINERGI_DEV=true, which `served_process` sets)."""
    _register_demo_clients(module_reference_url)
    with served_process(as_service(module_reference_url), "development") as (base, _):
        yield base


def _upgrade(base: str, host: str) -> bytes:
    """The answer to a WebSocket upgrade of /graphql addressed to `host`, as a browser sends
    it, whatever name it reached the server's address by: its head, and its body when refused."""
    port = int(base.rsplit(":", 1)[1])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /graphql HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.startswith(b"HTTP/1.1 101"):
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def _assert_host_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    (error,) = answer.json()["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN", "field": "Host"}
    assert "eyJ" not in answer.text  # no JWT


def test_a_rebound_name_is_refused_on_every_path_and_the_websocket(dev_server: str) -> None:
    port = dev_server.rsplit(":", 1)[1]
    rebound = {"Host": f"{REBOUND}:{port}"}
    token = httpx.post(f"{dev_server}/oauth/token", data=TOKEN_FORM).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}

    _assert_host_refused(httpx.post(f"{dev_server}/oauth/token", data=TOKEN_FORM, headers=rebound))
    _assert_host_refused(
        httpx.post(f"{dev_server}/graphql", json=VIEWER, headers={**rebound, **bearer})
    )
    _assert_host_refused(httpx.get(f"{dev_server}/metrics", headers=rebound))
    _assert_host_refused(httpx.get(f"{dev_server}/healthz", headers=rebound))
    upgrade = _upgrade(dev_server, f"{REBOUND}:{port}")
    assert upgrade.startswith(b"HTTP/1.1 403"), upgrade
    assert b'"extensions":{"code":"FORBIDDEN","field":"Host"}' in upgrade, upgrade


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "LocalHost", "[::1]"])
def test_a_loopback_name_at_any_port_is_served(dev_server: str, name: str) -> None:
    port = dev_server.rsplit(":", 1)[1]
    local = {"Host": f"{name}:{port}"}
    issued = httpx.post(f"{dev_server}/oauth/token", data=TOKEN_FORM, headers=local)
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    answer = httpx.post(f"{dev_server}/graphql", json=VIEWER, headers={**local, **bearer})
    assert answer.json() == {"data": {"viewer": {"clientId": GRAPHIQL_CLIENT_ID}}}
    assert httpx.get(f"{dev_server}/metrics", headers=local).status_code == 200
    assert _upgrade(dev_server, f"{name}:{port}").startswith(b"HTTP/1.1 101")


@pytest.fixture(scope="module")
def dev_app(dev_server: str, module_reference_url: str) -> Sinergi:
    """The app `serve --dev` serves, in this process: a test chooses the peer's address.
    `dev_server` has registered the demo clients."""
    settings = Settings(environment=Environment.DEVELOPMENT, dev=True, rate_limit=1_000_000)
    return create_app(settings, database_url=as_service(module_reference_url))


@pytest.mark.parametrize("peer", ["192.0.2.2", "10.0.0.7", "::ffff:192.0.2.2", "2001:db8::2"])
def test_a_peer_on_another_machine_is_refused_whatever_host_it_names(
    dev_app: Sinergi, peer: str
) -> None:
    """Any machine on the LAN can send `Host: localhost`: the name says nothing of where the
    request comes from, so the peer's address must be this machine's too."""
    with TestClient(dev_app, base_url="http://localhost:8000", client=(peer, 1234)) as client:
        for refused in (
            client.post("/oauth/token", data=TOKEN_FORM),
            client.get("/graphql", headers={"Accept": "text/html"}),
            client.post("/graphiql/token"),
            client.get("/metrics"),
        ):
            assert refused.status_code == 403, refused.text
            (error,) = refused.json()["errors"]
            assert error["extensions"] == {"code": "FORBIDDEN", "field": "address"}
            assert "eyJ" not in refused.text  # no JWT


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_a_peer_on_this_machine_is_served(dev_app: Sinergi, peer: str) -> None:
    """An `ssh -L` tunnel's connections come from 127.0.0.1, and keep working."""
    with TestClient(dev_app, base_url="http://localhost:8000", client=(peer, 1234)) as client:
        assert client.post("/oauth/token", data=TOKEN_FORM).status_code == 200
        assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 200


def test_graphiqls_demo_token_counts_against_the_clients_token_cap(fresh_url: str) -> None:
    """Each page and renewal mints a token (a scrypt and a signature): past
    SINERGI_TOKENS_PER_CLIENT in the window, 429 with Retry-After, as the token endpoint answers
    the same client, and the tokens either hands out count for both."""
    assert sinergi(fresh_url, "migrate")[0] == 0  # the reference data the demo clients name
    _register_demo_clients(fresh_url)
    capped = {"SINERGI_TOKENS_PER_CLIENT": "3"}
    with served_process(as_service(fresh_url), "development", capped) as (base, _):
        assert httpx.post(f"{base}/graphiql/token").status_code == 200
        page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert httpx.post(f"{base}/oauth/token", data=TOKEN_FORM).status_code == 200
        for refused in (
            httpx.post(f"{base}/graphiql/token"),
            httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}),
            httpx.post(f"{base}/oauth/token", data=TOKEN_FORM),
        ):
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            assert "RATE_LIMITED" in refused.text
            assert "eyJ" not in refused.text


def test_dev_serve_judges_the_sockets_peer_not_a_forwarded_header(
    fresh_url: str, tmp_path: Path
) -> None:
    """uvicorn replaced the peer with X-Forwarded-For's from any address FORWARDED_ALLOW_IPS
    names (`*`: any), so another machine sending `X-Forwarded-For: 127.0.0.1` passed for this
    one. Under --dev the header is not read: a request from 127.0.0.1 naming another machine in
    it is served, as one from that machine naming 127.0.0.1 is refused."""
    port = free_port()
    log = tmp_path / "serve.log"
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    env = {**clean, "SINERGI_HOME": str(tmp_path), "DATABASE_URL": fresh_url}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "serve", "--dev", "--port", str(port)],
            env={**env, "FORWARDED_ALLOW_IPS": "*"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_answering(process, f"{base}/readyz", log=log)
            forwarded = {"X-Forwarded-For": "192.0.2.2"}
            answer = httpx.post(f"{base}/oauth/token", data=TOKEN_FORM, headers=forwarded)
            assert answer.status_code == 200, answer.text
        finally:
            process.terminate()
            process.wait(60)
