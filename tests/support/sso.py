"""A stand-in for a Keycloak realm: its signing key, its JWKS served over real HTTP, its tokens."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

KID = "realm-1"


@dataclass(frozen=True)
class Realm:
    key: ECKey
    jwks_url: str

    def token(self, claims: dict[str, Any]) -> str:
        """An access token the realm signed with `claims`."""
        return jwt.encode({"alg": "ES256", "kid": KID}, claims, self.key)


async def province_level(code: str) -> str | None:
    """A region lookup for a token verified without a server's regions: every two-digit code is
    a province, nothing else is a region."""
    return "province" if len(code) == 2 and code.isdigit() else None


def user_claims(
    realm: str,
    *,
    sub: str,
    azp: str,
    org_kind: str,
    jurisdiction: str,
    roles: list[str],
) -> dict[str, Any]:
    """What a Keycloak realm puts in the access token of user `sub` logged in through the app
    `azp`, its organisation's kind and jurisdiction set by the realm's administrators."""
    return {
        "iss": realm,
        "aud": "sinergi",
        "sub": sub,
        "azp": azp,
        "exp": int(time.time()) + 300,
        "iat": int(time.time()),
        "org_kind": org_kind,
        "jurisdiction": jurisdiction,
        "realm_access": {"roles": roles},
    }


@contextmanager
def serving_realm() -> Iterator[Realm]:
    """A fresh P-256 key whose JWKS a local HTTP server publishes while the context lasts."""
    key = ECKey.generate_key("P-256", parameters={"kid": KID, "alg": "ES256"}, private=True)
    document = json.dumps({"keys": [key.as_dict(private=False)]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Realm(key, f"http://127.0.0.1:{server.server_port}/certs")
    finally:
        server.shutdown()
