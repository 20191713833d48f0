"""GraphiQL for development, served entirely by Sinergi: no CDN, so it works offline.

GraphiQL and React are committed unmodified under sinergi/static/graphiql/ with their licences
(tools/vendor_graphiql.py fetches them again), and the page names each file with its integrity,
so a browser runs only the published bytes. The page opens with a token of the demo client
in its headers tab, and renews it from `/graphiql/token` before it expires.

That token reads personal data, so the page and the renewal answer only a request from this
machine addressed to it by a loopback name (sinergi.loopback, which holds a whole `serve --dev`
to it): another machine, or a page of another site whose name was made to resolve to 127.0.0.1
(DNS rebinding), gets nothing. A renewal sent from another origin is refused too, and the page
declares what it runs (its Content-Security-Policy: its own files and the hash of its one inline
script) and that no other page may frame it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from functools import cache, lru_cache
from html import escape
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from auth.service import OAuthError
from sinergi.loopback import forbidden, outside

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = STATIC_DIR / "graphiql"
ASSETS_PATH = "/graphiql/static"
TOKEN_PATH = "/graphiql/token"  # noqa: S105 (a path, not a secret)

EXAMPLE_QUERY = """\
# You are demo-province-62, the demo Dinas Koperasi dan UKM
# Kalimantan Tengah: its token is in the Headers tab below,
# renewed before it expires. Run: Ctrl-Enter or the ▶ button.
# Docs: the book icon at the top left.
{
  viewer { clientId scopes }
  msmes(first: 5, filter: {region: "62.71"}) {
    totalCount
    nodes { nib name scale regency { name } }
  }
}
"""

Mint = Callable[[str], Awaitable[str]]
"""The demo client's token, as the token endpoint would issue it to the address given."""
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def integrity(data: bytes) -> str:
    """The Subresource Integrity value of `data`, as npm's CDN copies publish it."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@cache
def _assets() -> list[dict[str, Any]]:
    manifest: dict[str, Any] = json.loads((ASSETS_DIR / "assets.json").read_text())
    return list(manifest["assets"])


def _tag(asset: dict[str, Any]) -> str:
    url = escape(f"{ASSETS_PATH}/{asset['file']}?v={asset['version']}")
    sri = escape(asset["integrity"])
    if asset["file"].endswith(".css"):
        return f'<link rel="stylesheet" href="{url}" integrity="{sri}" />'
    return f'<script src="{url}" integrity="{sri}"></script>'


@cache
def _template() -> str:
    assets = _assets()
    styles = "\n    ".join(_tag(a) for a in assets if a["file"].endswith(".css"))
    scripts = "\n    ".join(_tag(a) for a in assets if a["file"].endswith(".js"))
    page = (STATIC_DIR / "graphiql.html").read_text()
    return page.replace("__STYLES__", styles).replace("__SCRIPTS__", scripts)


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _no_demo_token(error: OAuthError) -> Response:
    """No demo token for this request. Answered as every refusal on /graphql is, a coded
    GraphQL error (docs/contract.md), not in the OAuth shape that only /oauth/token speaks: 403
    when the server is no `serve --dev` (which alone accepts the demo secret) or the demo
    client was rotated or revoked (its token is no longer anyone's for the asking); else the
    token endpoint's own refusal for a while, its code and Retry-After (429 past the client's
    token cap or throttle, 503 while the server takes no more)."""
    headers = {"Cache-Control": "no-store"}
    code = error.code
    if code is None:
        code = "FORBIDDEN"
        message = (
            "GraphiQL is served only under `sinergi serve --dev` (SINERGI_ENV=development alone"
            " does not serve it), and hands out the demo client's token only while it holds the"
            f" published demo secret: {error.description}. Send a token from POST /oauth/token"
            " instead (under `serve --dev`, `sinergi clients reset-demo` gives the demo clients"
            " that secret again)."
        )
    else:
        message = f"GraphiQL's demo token: {error.description}"
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=error.status,
        headers=headers,
    )


def _source_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@lru_cache(maxsize=16)
def _page_headers(socket_origin: str) -> dict[str, str]:
    """The page's own files and its inline script and style, by hash (the token is in a data
    block, so their bytes never change); images and fonts are the stylesheet's data: URLs.
    `socket_origin` (`ws://127.0.0.1:8000`) is where its subscriptions connect: the page's own
    host, which 'self' covers for ws: in CSP Level 3 only, so it is named too. Only loopback
    names with a port of at most five digits reach here (`_refusal`), but a client may still
    name every port: the cache keeps the last few, so it cannot be grown."""
    inline: dict[str, list[str]] = {"script": [], "style": []}
    for element, text in _INLINE.findall(_template()):
        inline[element].append(_source_hash(text))
    policy = "; ".join(
        [
            "default-src 'none'",
            " ".join(["script-src 'self'", *inline["script"]]),
            " ".join(["style-src 'self'", *inline["style"]]),
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self' {socket_origin}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Cache-Control": "no-store",
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
    }


def _refusal(request: Request, *, renewal: bool) -> Response | None:
    """Why the demo token may not go to this request, or None. A browser's `Sec-Fetch-Site`
    must say it comes from no other site's page (a link, frame or image of which would mint a
    token counted against the demo client's cap), and a renewal's `Origin`, which a browser
    sends with every POST, must be the page's own."""
    fault = outside(request.scope)
    if fault is not None:
        return forbidden(
            fault,
            "GraphiQL and its demo token are served to a browser on this machine only, at"
            " localhost, 127.0.0.1 or [::1]; open it at one of those",
        )
    if request.headers.get("sec-fetch-site", "none") not in ("same-origin", "none"):
        return forbidden(
            "Sec-Fetch-Site",
            "GraphiQL's demo token is not minted for another site's page; open GraphiQL at its"
            " address, typed or pasted",
        )
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{host}".lower()
    if renewal and origin is not None and origin.lower() != own:
        return forbidden("Origin", "the demo token is renewed for GraphiQL's own page only")
    return None


class GraphiQLPage:
    """The IDE page, its files and the demo token's renewal: mounted in development only."""

    def __init__(self, mint: Mint, *, token_lifetime_seconds: int, endpoint: str) -> None:
        self.mint = mint
        self.token_lifetime_seconds = token_lifetime_seconds
        self.endpoint = endpoint

    async def _demo_token(self, request: Request, *, renewal: bool) -> str | Response:
        """The demo token for this request, or the response refusing it: one from another
        machine, a Host that is no loopback name or a foreign Origin (`_refusal`), a demo
        client that no longer holds the demo secret, or one issued as many tokens as the token
        endpoint issues it (counted from the request's address, as that endpoint counts them)."""
        refused = _refusal(request, renewal=renewal)
        if refused is not None:
            return refused
        address = request.client.host if request.client is not None else "unknown"
        try:
            return await self.mint(address)
        except OAuthError as error:
            return _no_demo_token(error)

    async def render(self, request: Request) -> Response:
        token = await self._demo_token(request, renewal=False)
        if isinstance(token, Response):
            return token
        settings = {
            "endpoint": self.endpoint,
            "tokenUrl": TOKEN_PATH,
            "token": token,
            "expiresIn": self.token_lifetime_seconds,
            "query": EXAMPLE_QUERY,
        }
        html = _template().replace("__SETTINGS__", _script_json(settings))
        scheme = "wss" if request.url.scheme == "https" else "ws"
        socket_origin = f"{scheme}://{request.headers.get('host', '')}".lower()
        return HTMLResponse(html, headers=_page_headers(socket_origin))

    async def token(self, request: Request) -> Response:
        token = await self._demo_token(request, renewal=True)
        if isinstance(token, Response):
            return token
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_seconds,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def home(self, request: Request) -> Response:
        """`/`, the address uvicorn logs, leads a person to GraphiQL (307: GET stays GET)."""
        return RedirectResponse(self.endpoint, status_code=307)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route(TOKEN_PATH, self.token, methods=["POST"]),
            Mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR)),
        ]
