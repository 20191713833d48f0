"""A warning, once per process, when a request carries X-Forwarded-For from a peer that uvicorn
does not trust (`FORWARDED_ALLOW_IPS`, which compose leaves empty). Behind a reverse proxy not
named there, every caller has the proxy's address, so the token endpoint's per-address limit
counts them all as one caller: the warning says so where an operator looks."""

from __future__ import annotations

import logging

from starlette.types import Scope

from sinergi.request_headers import header

logger = logging.getLogger("sinergi.auth")


class ForwardingCheck:
    def __init__(self) -> None:
        self.warned = False

    def check(self, scope: Scope) -> None:
        """uvicorn takes the client's address from X-Forwarded-For only when the peer is
        trusted, and it is then one of the header's entries: an address that is none of them
        is the peer's own, the header ignored."""
        if self.warned:
            return
        forwarded = header(scope, b"x-forwarded-for")
        if forwarded is None:
            return
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        if peer in {entry.strip() for entry in forwarded.split(",")}:
            return
        self.warned = True
        logger.warning(
            "a request from %s carries X-Forwarded-For, which is ignored: that peer is not in"
            " FORWARDED_ALLOW_IPS. Behind a reverse proxy, set it to the proxy's address, or"
            " every caller counts as the proxy's one address in the token endpoint's"
            " per-address limit",
            peer,
        )
