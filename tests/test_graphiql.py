"""GraphiQL only in development, served by Sinergi itself, already holding a demo token that
works and that the page can renew: to a loopback Host only, its renewal to its own origin only,
and under a Content-Security-Policy that frames it nowhere."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from sinergi.app import create_app
from sinergi.graphiql import ASSETS_DIR, integrity
from sinergi.settings import Environment, Settings
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.http import LOOPBACK_PEER, Api

LOCAL = "http://127.0.0.1:18502"  # TestClient's own default, testserver, is no loopback name


@pytest.fixture(scope="module")
def local(demo_url: str, api: Api) -> Iterator[TestClient]:
    """Development mode, reached as a browser on this machine reaches it."""
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    app = create_app(settings, database_url=as_service(demo_url))
    with TestClient(app, base_url=LOCAL, client=LOOPBACK_PEER) as client:
        yield client


def _viewer(client: TestClient, token: str) -> object:
    answer = client.post(
        "/graphql",
        json={"query": "{ viewer { clientId } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return answer.json()


def test_development_serves_graphiql_with_a_working_demo_token(local: TestClient) -> None:
    settings = Settings()
    page = local.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    (token,) = re.findall(r'"token": "([^"]+)"', page.text)
    assert _viewer(local, token) == {"data": {"viewer": {"clientId": "demo-province-62"}}}

    renewed = local.post("/graphiql/token")
    assert renewed.headers["cache-control"] == "no-store"
    assert renewed.json()["expires_in"] == settings.token_lifetime_seconds
    fresh = renewed.json()["access_token"]
    assert _viewer(local, fresh) == {"data": {"viewer": {"clientId": "demo-province-62"}}}


def _cli(url: str, *argv: str) -> int:
    return sinergi(url, *argv)[0]


@pytest.mark.parametrize("command", ["rotate", "revoke"])
def test_graphiql_hands_out_no_token_once_the_demo_client_has_a_new_secret_or_none(
    fresh_url: str, command: str
) -> None:
    """`/graphiql/token` asks for no credentials: it mints only while the demo client is active
    with the published demo secret, checked at each mint, not only when the server started."""
    assert _cli(fresh_url, "migrate") == 0

    demo_clients(fresh_url)
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    app = create_app(settings, database_url=as_service(fresh_url))
    with TestClient(app, base_url=LOCAL, client=LOOPBACK_PEER) as client:
        assert client.post("/graphiql/token").status_code == 200
        assert _cli(fresh_url, "clients", command, "demo-province-62") == 0
        for refused in (
            client.post("/graphiql/token"),
            client.get("/graphql", headers={"Accept": "text/html"}),
        ):
            assert refused.status_code == 403, refused.text
            assert refused.headers["cache-control"] == "no-store"
            (error,) = refused.json()["errors"]
            assert error["extensions"] == {"code": "FORBIDDEN"}
            assert "only while it holds the published demo secret" in error["message"]
            assert "sinergi clients reset-demo" in error["message"]


def test_graphiql_loads_nothing_from_elsewhere_and_only_the_published_files(
    local: TestClient,
) -> None:
    """Every script and stylesheet comes from this server, with the integrity of the
    published npm file, and the server answers each with exactly those bytes."""
    page = local.get("/graphql", headers={"Accept": "text/html"}).text
    references = re.findall(r'(?:src|href)="([^"]+)" integrity="([^"]+)"', page)
    assert len(references) == 4
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    for url, expected in references:
        assert url.startswith("/graphiql/static/")
        served = local.get(url)
        assert served.status_code == 200
        assert integrity(served.content) == expected
    assert local.get("/graphiql/static/../graphiql.html").status_code == 404


REBOUND = "rebind.attacker.example:18502"


@pytest.mark.parametrize(
    "host",
    [
        REBOUND,
        "localhost.attacker.example",
        "127.0.0.1.nip.io:18502",
        "[::1].attacker.example",
        "192.168.1.5:18502",
        "",
        # No port has six digits; each page's headers are kept by origin, so a client naming
        # ever longer ports grew the dev server's memory without end.
        "localhost:" + "1" * 6000,
    ],
)
def test_graphiql_and_its_token_are_refused_to_a_host_that_is_no_loopback_name(
    local: TestClient, host: str
) -> None:
    """DNS rebinding: a page of another site whose name now resolves to 127.0.0.1 reaches the
    server, but addressed by that name. It gets neither the page nor a token."""
    page = local.get("/graphql", headers={"Accept": "text/html", "Host": host})
    renewal = local.post("/graphiql/token", headers={"Host": host, "Origin": f"http://{host}"})
    for refused in (page, renewal):
        assert refused.status_code == 403, refused.text
        (error,) = refused.json()["errors"]
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "Host"}
        assert "eyJ" not in refused.text  # no JWT


@pytest.mark.parametrize(
    "host", ["localhost", "LocalHost:8000", "127.0.0.1", "127.0.0.1:18502", "[::1]:8000"]
)
def test_any_loopback_name_at_any_port_gets_graphiql(local: TestClient, host: str) -> None:
    page = local.get("/graphql", headers={"Accept": "text/html", "Host": host})
    renewal = local.post(
        "/graphiql/token", headers={"Host": host, "Origin": f"http://{host.lower()}"}
    )
    assert page.status_code == 200
    assert renewal.status_code == 200
    assert renewal.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("origin", [f"http://{REBOUND}", "null", "https://127.0.0.1:18502"])
def test_the_token_is_renewed_for_graphiqls_own_origin_only(local: TestClient, origin: str) -> None:
    """A browser names the page that sends a POST; one without an Origin (curl) is no page."""
    refused = local.post("/graphiql/token", headers={"Origin": origin})
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["extensions"]["field"] == "Origin"
    assert "eyJ" not in refused.text
    for headers in ({"Origin": LOCAL}, {}):
        assert local.post("/graphiql/token", headers=headers).status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_page_of_another_site_gets_no_demo_token_minted(local: TestClient, site: str) -> None:
    """Another site's page can open GraphiQL (a link, a frame, an image) without reading it:
    each would mint a token counted against the demo client's cap, which locks GraphiQL out."""
    for refused in (
        local.get("/graphql", headers={"Accept": "text/html", "Sec-Fetch-Site": site}),
        local.post("/graphiql/token", headers={"Sec-Fetch-Site": site}),
    ):
        assert refused.status_code == 403, refused.text
        (error,) = refused.json()["errors"]
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "Sec-Fetch-Site"}
        assert "eyJ" not in refused.text
    for site_of_its_own in ("same-origin", "none"):  # its renewal; an address typed in
        headers = {"Accept": "text/html", "Sec-Fetch-Site": site_of_its_own}
        assert local.get("/graphql", headers=headers).status_code == 200


def test_the_page_runs_only_its_own_scripts_and_no_other_page_frames_it(
    local: TestClient,
) -> None:
    """The one inline script is allowed by its hash (the token is in a data block beside it,
    so its bytes never change); nothing inline beyond it, no other origin, no framing."""
    pages = [local.get("/graphql", headers={"Accept": "text/html"}) for _ in range(2)]
    assert pages[0].text != pages[1].text  # each with a fresh token
    for page in pages:
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in page.headers["content-security-policy"].split(";")
        )
        assert policy["frame-ancestors"] == "'none'"
        assert policy["default-src"] == "'none'"
        assert policy["connect-src"] == "'self' ws://127.0.0.1:18502"  # its subscriptions
        assert "unsafe" not in page.headers["content-security-policy"]
        for element in ("script", "style"):
            (inline,) = re.findall(rf"<{element}>(.*?)</{element}>", page.text, re.DOTALL)
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert policy[f"{element}-src"] == f"'self' 'sha256-{digest}'"


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
    assert api.client.get("/").status_code == 404  # `/` leads to GraphiQL in development only
