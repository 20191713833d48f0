"""The loopback rule: what may go only to a browser on this machine is answered only to a
request from this machine (its peer's address a loopback one: 127.0.0.0/8, ::1 or ::ffff:127.x)
addressed to it by a loopback name (a `Host` of localhost, 127.0.0.1 or [::1], at any port).
The address holds off another machine, which can send any `Host` it likes; an `ssh -L` tunnel's
connections come from 127.0.0.1, so a demo shown that way still works. The name holds off a page
of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding): it is same-origin
with the server, reads its answers and sends it any header, but it addresses the server by its
own name, and gets nothing.

Two places hold to it: GraphiQL, whose page holds the demo token (sinergi.graphiql), and, under
`serve --dev`, the whole server (`LoopbackOnly`), since the demo clients' secret is published
and so anyone's page could take their tokens from the token endpoint.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.addresses import is_loopback
from sinergi.request_headers import header

LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]]*)(?::[0-9]{1,5})?")


def _host_name(host: str) -> str:
    """The `Host` header's name without its port (`[::1]:8000` is `[::1]`); "" for one that is
    no name and port, as `[::1].attacker.example` is not."""
    found = _HOST.fullmatch(host.lower())
    return found.group(1) if found else ""


def addressed_to_loopback(host: str | None) -> bool:
    """Whether a request with this `Host` (None: none sent) names this machine by a loopback
    name, at a port of at most five digits."""
    return _host_name(host or "") in LOOPBACK


def outside(scope: Scope) -> str | None:
    """The part of the request that may come from elsewhere than this machine, as
    `forbidden` names it: `Host` when no loopback name, `address` when the peer's is no
    loopback address; None for a request this rule lets through."""
    if not addressed_to_loopback(header(scope, b"host")):
        return "Host"
    client = scope.get("client")  # None: the peer is not known
    if client is None or not is_loopback(client[0]):
        return "address"
    return None


def forbidden(field: str, reason: str) -> Response:
    """403 FORBIDDEN naming the request's part at fault, never kept by a cache."""
    error = {"message": f"{field}: {reason}", "extensions": {"code": "FORBIDDEN", "field": field}}
    return JSONResponse({"errors": [error]}, status_code=403, headers={"Cache-Control": "no-store"})


class LoopbackOnly:
    """Every HTTP request and WebSocket upgrade refused 403 unless from this machine and
    addressed by a loopback name (`outside`): the server of `serve --dev` (sinergi.app), whose
    demo clients anyone can act as. The upgrade is refused before it is accepted, with the same
    answer (ASGI's WebSocket denial response)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = outside(scope) if scope["type"] != "lifespan" else None
        if fault is not None:
            refusal = forbidden(
                fault,
                "this server holds the demo clients' published secret (--dev), so it answers"
                " only a request from this machine addressed to localhost, 127.0.0.1 or [::1];"
                " from another machine, reach it through a tunnel to this one (ssh -L)",
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)
