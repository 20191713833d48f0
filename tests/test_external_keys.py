"""An external issuer's JWKS as an unauthenticated caller can make Sinergi fetch it: a token naming
the issuer and a kid it has not published. One fetch per issuer at a time, none again within the
back-off whether it failed or not, and on threads of the issuer's own, so neither a burst of such
tokens nor an issuer that never answers holds up the token endpoint's scrypt."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from sinergi.settings import Settings
from tests.support.http import Api, served

ISSUERS = 40  # more than the default executor's threads (at most 32)


class _Jwks(ThreadingHTTPServer):
    """An issuer's JWKS URL that answers 404, once `answering` is set; until then it holds every
    fetch open, as a server that accepts connections but never answers."""

    daemon_threads = True
    request_queue_size = 4 * ISSUERS

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Holding)
        self.fetched: list[str] = []
        self.answering = threading.Event()

    def issuers(self, count: int) -> str:
        """SINERGI_EXTERNAL_ISSUERS for `count` issuers whose JWKS this server is."""
        base = f"http://127.0.0.1:{self.server_port}"
        return json.dumps(
            [
                {"issuer": _realm(n), "jwks_url": f"{base}/certs/{n}", "audience": "sinergi"}
                for n in range(count)
            ]
        )


class _Holding(BaseHTTPRequestHandler):
    server: _Jwks

    def do_GET(self) -> None:
        self.server.fetched.append(self.path)
        self.server.answering.wait(60)
        self.send_error(404)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.answering.set()
    server.shutdown()
    server.server_close()


def _realm(n: int) -> str:
    return f"https://sso.example.go.id/realms/jwks-stub-{n}"


def _made_up_kid_token(realm: str) -> str:
    """Anyone can make this: it names the issuer and a kid, and needs no key of the issuer's."""
    anyone = ECKey.generate_key("P-256", private=True)
    now = int(time.time())
    claims = {"iss": realm, "aud": "sinergi", "sub": "x", "iat": now, "exp": now + 300}
    return jwt.encode({"alg": "ES256", "kid": "made-up"}, claims, anyone)


def _ask(api: Api, token: str) -> httpx.Response:
    return api.post({"query": "{ viewer { clientId } }"}, token)


def _burst(api: Api, tokens: list[str]) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(lambda token: _ask(api, token), tokens))


def test_a_burst_naming_an_issuer_fetches_its_keys_once_and_a_failure_backs_off(
    demo_url: str, api: Api, jwks: _Jwks
) -> None:
    jwks.answering.set()
    settings = Settings(external_issuers=jwks.issuers(1), rate_limit=1_000_000)
    with served(demo_url, settings) as sso_api:
        first = _burst(sso_api, [_made_up_kid_token(_realm(0)) for _ in range(30)])
        assert {answer.status_code for answer in first} == {401}
        assert jwks.fetched == ["/certs/0"]
        again = _burst(sso_api, [_made_up_kid_token(_realm(0)) for _ in range(10)])
        assert {answer.status_code for answer in again} == {401}
        assert jwks.fetched == ["/certs/0"]  # within the back-off of the failed fetch


def test_issuers_that_never_answer_hold_up_neither_the_token_endpoint_nor_more_fetches(
    demo_url: str, api: Api, jwks: _Jwks
) -> None:
    """Every issuer's fetch held open at once: the token endpoint still answers while they hang,
    and each issuer was fetched once however many tokens named it."""
    settings = Settings(external_issuers=jwks.issuers(ISSUERS), rate_limit=1_000_000)
    tokens = [_made_up_kid_token(_realm(n % ISSUERS)) for n in range(3 * ISSUERS)]
    with served(demo_url, settings) as sso_api, ThreadPoolExecutor(len(tokens) + 1) as pool:
        waiting: list[Future[httpx.Response]] = [
            pool.submit(_ask, sso_api, token) for token in tokens
        ]
        deadline = time.monotonic() + 10
        while len(jwks.fetched) < ISSUERS and time.monotonic() < deadline:
            time.sleep(0.05)
        # On the default executor the hanging fetches would hold every thread scrypt needs.
        issued = pool.submit(sso_api.token_response, "demo-ministry").result(timeout=30)
        assert issued.status_code == 200, issued.text
        assert not any(answer.done() for answer in waiting)  # still waiting for the issuers
        assert len(jwks.fetched) == ISSUERS  # every issuer's fetch under way at once
        jwks.answering.set()
        assert {answer.result().status_code for answer in waiting} == {401}
        assert Counter(jwks.fetched) == {f"/certs/{n}": 1 for n in range(ISSUERS)}
        again = _burst(sso_api, [_made_up_kid_token(_realm(n)) for n in range(ISSUERS)])
        assert {answer.status_code for answer in again} == {401}
        assert len(jwks.fetched) == ISSUERS
