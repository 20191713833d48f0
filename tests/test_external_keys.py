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

from auth import external
from sinergi.settings import Settings, SettingsError
from tests.support.http import Api, served
from tests.support.sso import user_claims

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


class _Rotating(ThreadingHTTPServer):
    """An issuer's JWKS URL under the test's control: it publishes `published`, answers 503
    while `failing`, holds each fetch until `released` while that is clear, and redirects
    `/moved` to `redirect_to`; it answers `body` instead of the keys when that is set."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Publishing)
        self.published: list[ECKey] = []
        self.fetches = 0
        self.failing = False
        self.released = threading.Event()
        self.released.set()
        self.redirect_to = ""
        self.padding = 0
        self.body: bytes | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Publishing(BaseHTTPRequestHandler):
    server: _Rotating

    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.end_headers()
            return
        self.server.fetches += 1
        self.server.released.wait(30)
        if self.server.failing:
            self.send_error(503)
            return
        keys = [key.as_dict(private=False) for key in self.server.published]
        body = self.server.body or json.dumps({"keys": keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body + b" " * self.server.padding)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def realm() -> Iterator[_Rotating]:
    server = _Rotating()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


ROTATING = "https://sso.example.go.id/realms/rotating"


def _key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"}, private=True)


def _signed(key: ECKey, jurisdiction: str) -> str:
    """A province's token of ROTATING, signed with `key`."""
    claims = user_claims(
        ROTATING, sub="u", azp="app", org_kind="province", jurisdiction=jurisdiction, roles=[]
    )
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def _rotating_settings(jwks_url: str) -> Settings:
    issuer = {"issuer": ROTATING, "jwks_url": jwks_url, "audience": "sinergi"}
    return Settings(external_issuers=json.dumps([issuer]), rate_limit=1_000_000)


def test_a_key_the_issuer_deleted_is_refused_once_its_keys_are_older_than_the_max_age(
    demo_url: str, realm: _Rotating, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation: k2 added (fetched for its new kid, k1 still published then), k1 deleted
    later. Every token then names a known kid, so nothing fetched the keys again, and k1 (leaked,
    say) verified tokens for the life of the process, minted after its deletion too."""
    monkeypatch.setattr(external, "REFETCH_AFTER_SECONDS", 0.0)
    k1, k2 = _key("k1"), _key("k2")
    realm.published = [k1]
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        assert _ask(sso_api, _signed(k1, "62")).status_code == 200
        realm.published = [k1, k2]
        assert _ask(sso_api, _signed(k2, "62")).status_code == 200
        assert realm.fetches == 2
        realm.published = [k2]
        # Within the max age the keys in hand still verify it: that is the bound.
        assert _ask(sso_api, _signed(k1, "61")).status_code == 200
        assert realm.fetches == 2
        monkeypatch.setattr(external, "MAX_AGE_SECONDS", 0.0)  # the max age has passed
        refused = _ask(sso_api, _signed(k1, "61"))
        assert refused.status_code == 401, refused.text
        assert realm.fetches == 3
        assert _ask(sso_api, _signed(k2, "61")).status_code == 200


def test_keys_too_old_are_fetched_once_while_their_tokens_are_still_answered(
    demo_url: str, realm: _Rotating, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request that finds the keys too old fetches them; those arriving meanwhile with a kid
    in hand are verified with the keys in hand, not held up by the issuer."""
    monkeypatch.setattr(external, "REFETCH_AFTER_SECONDS", 0.0)
    key = _key("k1")
    realm.published = [key]
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        assert _ask(sso_api, _signed(key, "62")).status_code == 200
        monkeypatch.setattr(external, "MAX_AGE_SECONDS", 0.0)
        realm.released.clear()
        with ThreadPoolExecutor(1) as pool:
            refetching = pool.submit(_ask, sso_api, _signed(key, "62"))
            deadline = time.monotonic() + 10
            while realm.fetches < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert realm.fetches == 2  # the refetch is under way, held by the issuer
            meanwhile = _burst(sso_api, [_signed(key, "61") for _ in range(5)])
            assert {answer.status_code for answer in meanwhile} == {200}
            assert not refetching.done()
            realm.released.set()
            assert refetching.result(timeout=30).status_code == 200
        assert realm.fetches == 2


def test_a_key_set_too_large_to_be_one_is_not_read(demo_url: str, realm: _Rotating) -> None:
    """An endless answer at the JWKS URL grew the process for as long as it came (the fetch's
    thread outlives its timeout): past MAX_KEY_SET_BYTES it is a failed fetch, and the issuer's
    tokens are refused until a fetch after the back-off gets a key set of a sensible size."""
    key = _key("k1")
    realm.published = [key]
    realm.padding = external.MAX_KEY_SET_BYTES
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        refused = _ask(sso_api, _signed(key, "62"))
        assert refused.status_code == 401, refused.text
        assert realm.fetches == 1
    realm.padding = 0
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        assert _ask(sso_api, _signed(key, "62")).status_code == 200


def test_while_the_issuer_cannot_be_fetched_its_last_keys_serve_for_a_grace_then_none(
    demo_url: str, realm: _Rotating, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail-open for a bounded grace (users stay logged in through an SSO outage), then closed:
    whoever can keep Sinergi from the SSO cannot keep a deleted key trusted for ever."""
    monkeypatch.setattr(external, "REFETCH_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(external, "RETRY_AFTER_FAILURE_SECONDS", 0.0)
    key = _key("k1")
    realm.published = [key]
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        assert _ask(sso_api, _signed(key, "62")).status_code == 200
        monkeypatch.setattr(external, "MAX_AGE_SECONDS", 0.0)
        realm.failing = True
        assert _ask(sso_api, _signed(key, "62")).status_code == 200  # within the grace
        assert realm.fetches == 2
        grace = external.STALE_GRACE_SECONDS
        monkeypatch.setattr(external, "STALE_GRACE_SECONDS", 0.0)  # the grace has passed
        assert _ask(sso_api, _signed(key, "62")).status_code == 401
        assert realm.fetches == 3
        realm.failing = False
        monkeypatch.setattr(external, "STALE_GRACE_SECONDS", grace)
        assert _ask(sso_api, _signed(key, "62")).status_code == 200


def test_a_key_set_too_deeply_nested_to_parse_is_a_failed_fetch(
    demo_url: str, realm: _Rotating, monkeypatch: pytest.MonkeyPatch
) -> None:
    """json.loads raised RecursionError, which no fetch failure was: every token of the issuer
    was an INTERNAL error, fetching again each time, the keys in hand unused. A failure like any
    other: backed off, and the last keys serve for the grace."""
    monkeypatch.setattr(external, "REFETCH_AFTER_SECONDS", 0.0)
    key = _key("k1")
    realm.published = [key]
    realm.body = b"[" * 100_000 + b"]" * 100_000
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        refused = _ask(sso_api, _signed(key, "62"))
        assert refused.status_code == 401, refused.text
        assert _ask(sso_api, _signed(key, "62")).status_code == 401
        assert realm.fetches == 1  # within the back-off
    realm.body = None
    with served(demo_url, _rotating_settings(f"{realm.base}/certs")) as sso_api:
        assert _ask(sso_api, _signed(key, "62")).status_code == 200
        monkeypatch.setattr(external, "MAX_AGE_SECONDS", 0.0)
        realm.body = b"[" * 100_000 + b"]" * 100_000
        assert _ask(sso_api, _signed(key, "62")).status_code == 200  # within the grace
        assert _ask(sso_api, _signed(key, "62")).status_code == 200
        assert realm.fetches == 3  # the second fetch, backed off after the failure


@pytest.mark.parametrize(
    "jwks_url",
    [
        "http://sso.example.go.id/realms/x/certs",
        "http://10.0.0.5/certs",
        "file:///etc/passwd",
        "ftp://sso.example.go.id/certs",
    ],
)
def test_a_jwks_url_anyone_on_the_path_could_answer_is_refused(jwks_url: str) -> None:
    issuers = json.dumps([{"issuer": ROTATING, "jwks_url": jwks_url, "audience": "sinergi"}])
    with pytest.raises(SettingsError, match=f"SINERGI_EXTERNAL_ISSUERS.*jwks_url {jwks_url}: "):
        Settings.from_env({"SINERGI_EXTERNAL_ISSUERS": issuers})


@pytest.mark.parametrize("own", ["https://sinergi.example.go.id", "https://sinergi.example.go.id/"])
def test_this_servers_own_issuer_is_refused_as_an_external_one(own: str) -> None:
    """Listed, it routed this server's own tokens to the external path (auth/service.py), past
    the client registry: `sinergi clients revoke` stopped working for them."""
    entry = {"issuer": own, "jwks_url": "https://sso.example.go.id/certs", "audience": "sinergi"}
    with pytest.raises(SettingsError, match=r"SINERGI_EXTERNAL_ISSUERS.*SINERGI_ISSUER"):
        Settings.from_env(
            {
                "SINERGI_ISSUER": "https://sinergi.example.go.id",
                "SINERGI_EXTERNAL_ISSUERS": json.dumps([entry]),
            }
        )
    with pytest.raises(SettingsError, match=r"SINERGI_EXTERNAL_ISSUERS.*SINERGI_ISSUER"):
        Settings.from_env(
            {"SINERGI_ISSUER": f"{own}/", "SINERGI_EXTERNAL_ISSUERS": json.dumps([entry])}
        )


@pytest.mark.parametrize(
    ("issuers", "refusal"),
    [
        ([""], "issuer must be"),
        ([5], "issuer must be"),
        (["https://sso.example.go.id/realms/a#b"], "issuer .* holds a '#'"),
        ([ROTATING, ROTATING], "lists the issuer .* twice"),
    ],
)
def test_an_issuer_named_empty_with_a_hash_or_twice_is_refused(
    issuers: list[Any], refusal: str
) -> None:
    """`ISSUER#CLIENT` is a principal's id: an issuer holding a `#` spells another issuer's
    principals (`a` and `a#b` share `a#b#app`), and one listed twice was the last alone,
    silently."""
    entries = [
        {"issuer": issuer, "jwks_url": "https://sso.example.go.id/certs", "audience": "sinergi"}
        for issuer in issuers
    ]
    with pytest.raises(SettingsError, match=f"SINERGI_EXTERNAL_ISSUERS.*{refusal}"):
        Settings.from_env({"SINERGI_EXTERNAL_ISSUERS": json.dumps(entries)})


def test_a_refused_jwks_url_is_named_without_its_user_and_password() -> None:
    """The refusal is printed and logged: a password in the URL stays out of it."""
    jwks_url = "http://sinergi:never-printed-7d1e@sso.example.go.id/realms/x/certs"
    issuers = json.dumps([{"issuer": ROTATING, "jwks_url": jwks_url, "audience": "sinergi"}])
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SINERGI_EXTERNAL_ISSUERS": issuers})
    assert "jwks_url http://sso.example.go.id/realms/x/certs: plain http" in str(refused.value)
    assert "never-printed" not in str(refused.value)


def test_a_jwks_url_holding_a_user_and_password_is_refused_without_them() -> None:
    """urllib takes them for part of the host: every fetch would fail, and its reason, logged
    with each token refused (`nonnumeric port: 'PASSWORD@HOST'`), would print the password."""
    jwks_url = "https://sinergi:never-printed-7d1e@sso.example.go.id/realms/x/certs"
    issuers = json.dumps([{"issuer": ROTATING, "jwks_url": jwks_url, "audience": "sinergi"}])
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SINERGI_EXTERNAL_ISSUERS": issuers})
    assert "jwks_url https://sso.example.go.id/realms/x/certs: holds a user" in str(refused.value)
    assert "never-printed" not in str(refused.value)


@pytest.mark.parametrize(
    "jwks_url",
    [
        "https://sso.example.go.id/realms/x/certs",
        "http://127.0.0.1:8080/certs",
        "http://localhost:8080/certs",
        "http://[::1]:8080/certs",
    ],
)
def test_a_jwks_url_over_https_or_to_this_machine_is_accepted(jwks_url: str) -> None:
    issuers = json.dumps([{"issuer": ROTATING, "jwks_url": jwks_url, "audience": "sinergi"}])
    assert Settings.from_env({"SINERGI_EXTERNAL_ISSUERS": issuers}).external_issuers == issuers


def test_a_jwks_redirect_is_followed_only_within_its_origin(
    demo_url: str, realm: _Rotating
) -> None:
    """urllib followed a redirect anywhere, plain http too: whoever answered there chose the
    keys. Here the other origin (localhost, not 127.0.0.1) publishes a key of its own."""
    theirs, ours = _key("k1"), _key("k1")
    other = _Rotating()
    other.published = [theirs]
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        realm.published = [ours]
        realm.redirect_to = f"http://localhost:{other.server_port}/certs"
        with served(demo_url, _rotating_settings(f"{realm.base}/moved")) as sso_api:
            assert _ask(sso_api, _signed(theirs, "62")).status_code == 401
            assert other.fetches == 0
        realm.redirect_to = f"{realm.base}/certs"
        with served(demo_url, _rotating_settings(f"{realm.base}/moved")) as sso_api:
            assert _ask(sso_api, _signed(ours, "62")).status_code == 200
    finally:
        other.shutdown()
        other.server_close()


class _Trickling(BaseHTTPRequestHandler):
    """A JWKS URL answering a byte a fifth of a second: each read waits less than any read's
    timeout, the answer as long as it likes."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(50):
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.2)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_jwks_trickled_a_byte_at_a_time_is_given_up_once_the_fetch_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fetch's thread read on for as long as the answer came (the socket's timeout bounds
    each read), so an issuer trickling its key set kept the process from exiting: the fetch has
    FETCH_TIMEOUT_SECONDS in all, shortened here to 1."""
    monkeypatch.setattr(external, "FETCH_TIMEOUT_SECONDS", 1.0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            external._fetch(f"http://127.0.0.1:{server.server_port}/certs")
        assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


def test_a_plain_http_jwks_is_fetched_directly_whatever_proxy_the_environment_names(
    realm: _Rotating, monkeypatch: pytest.MonkeyPatch
) -> None:
    """urllib sent a loopback http JWKS fetch through `http_proxy`, in the clear: the proxy
    served keys of its own choosing, and tokens it signed were accepted. Here the proxy (any
    request it is sent, it answers with its own key set) is never asked."""
    proxy = _Rotating()
    proxy.published = [_key("k1")]
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    ours = _key("k1")
    realm.published = [ours]
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy.base)
    try:
        fetched = external._fetch(f"{realm.base}/certs")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert fetched == {"keys": [ours.as_dict(private=False)]}
    assert proxy.fetches == 0
