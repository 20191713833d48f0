"""GraphQL subscriptions over a WebSocket (graphql-transport-ws): who is connected, and until when.

The token comes as over HTTP, in the upgrade request's `Authorization` header, or (browsers
cannot set one) in `connection_init`'s payload as `{"Authorization": "Bearer …"}`; the same
check admits it. Until then the connection's context holds nobody, with no scopes, and
strawberry runs no operation before the connection is acknowledged. The token is checked again
for each subscribe message (`lapsed`), and by a subscription before each page it reads and
sends (at least every RECHECK_SECONDS), so a client revoked, narrowed or expired meanwhile
receives nothing more: its subscriptions complete and the connection is closed with 4403, as a
bad token's is. Every connection is checked every RECHECK_SECONDS all the same (`until_lapsed`):
one running no subscription answers pings only while its token stands, and one whose
subscription is stuck sending to a client that does not read is cut (sinergi.graphql_app).
Each subscribe message is held to the client's trusted documents as a POST is (`operation`).
Each client holds at most so many connections open in a process (`Sockets`).

No frame is decoded past its bound: until the connection is acknowledged, ADMISSION_FRAME_CHARS
(a `connection_init` carries a token at most); then QueryLimits' `max_frame_chars`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError

from auth.principal import Principal
from auth.scopes import OrgKind
from auth.service import AuthService
from auth.tokens import InvalidToken
from db.errors import is_transient, transient_reason
from resolvers.context import Context, Limits, Live
from sinergi import metrics, request_context
from sinergi.guard import OperationChecks, Refusal
from sinergi.rate_limit import RateLimiter, service_unavailable
from sinergi.trusted_documents import TrustedDocuments

logger = logging.getLogger("sinergi.subscriptions")

RECHECK_SECONDS = 2.0
NOBODY = Principal(client_id="", org_kind=OrgKind.MINISTRY, jurisdiction="", scopes=frozenset())
TRY_AGAIN_LATER_CLOSE_CODE = 1013
"""A connection refused for now, its client past its bound of connections or over its rate
limit, or the database away: the registered "Try Again Later", which clients such as graphql-ws
retry with a backoff (they give up on 4403, and strawberry's 4429 means a second
`connection_init`)."""
TOO_BIG_CLOSE_CODE = 1009
"""A frame over its bound: the registered "Message Too Big", which uvicorn sends too for a frame
over its `ws_max_size` (QueryLimits' `max_frame_chars`): one code whichever refused it."""
ADMISSION_FRAME_CHARS = 16_384
"""The longest frame a connection may send before it is acknowledged, so before its token is
checked: `connection_init` holds a token at most, and an SSO's access tokens run to a few
thousand characters. Unbounded, six anonymous connections each sending one 16 MB
`connection_init` of `[{},{},…]` took a server from 210 MB to 2.7 GB."""


class TryAgainLater(Exception):
    """The connection is refused for now: closed with TRY_AGAIN_LATER_CLOSE_CODE and `reason`
    (a close frame holds at most 123 bytes of it), counted under `code`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    @classmethod
    def after(cls, refusal: Refusal) -> TryAgainLater:
        """`refusal`'s code and its Retry-After, as HTTP would answer them: the reason reads
        `RATE_LIMITED: retry in 42 s`."""
        code = str(refusal.errors[0].get("extensions", {}).get("code", "INTERNAL"))
        return cls(code, f"{code}: retry in {refusal.headers['Retry-After']} s")


class Sockets:
    """How many admitted connections each client holds open in this process, up to `per_client`.
    A connection and its subscribe messages count against the rate limit once each, but each
    subscription then reads PostgreSQL every RECHECK_SECONDS and on every commit for as long as
    it runs, at no further cost: without a bound, a client within its rate limit could keep
    thousands running by the end of its token's life."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._held: dict[str, int] = {}

    def hold(self, client_id: str) -> bool:
        """Takes one of the client's places, if one is free. Synchronous, so two connections
        admitted at once cannot both take the last place."""
        held = self._held.get(client_id, 0)
        if held >= self.per_client:
            return False
        self._held[client_id] = held + 1
        return True

    def release(self, client_id: str) -> None:
        """Gives back a place `hold` took; a client holding none is forgotten."""
        held = self._held.pop(client_id) - 1
        if held:
            self._held[client_id] = held


def context_for(websocket: WebSocket, limits: Limits) -> Context:
    """A WebSocket's context, for nobody until `admit` accepts its token."""
    return request_context.context_for(websocket, NOBODY, limits)


def _token(context: Context, websocket: WebSocket) -> str | None:
    params = context.connection_params or {}
    header = params.get("Authorization", params.get("authorization"))
    if not isinstance(header, str):
        header = websocket.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def admit(
    context: Context, websocket: WebSocket, rate_limiter: RateLimiter, sockets: Sockets
) -> None:
    """Accept the connection's token, or refuse the connection (close code 4403). The connection
    counts as one request against the client's rate limit, and each subscribe message as one
    more (`operation`); its rechecks read only the process's registry, which revocation reaches
    by notification, so they count as none. A connection over the rate limit, or past the
    client's bound in `sockets`, is refused with TryAgainLater; an admitted one holds its place
    until `closed`."""
    auth: AuthService = websocket.state.auth
    token = _token(context, websocket)
    if token is None:
        metrics.observe_websocket_refusal("UNAUTHENTICATED", None)
        raise ConnectionRejectionError({"message": "an access token is required"})
    try:
        principal = (await auth.authenticate(token)).principal
    except InvalidToken as error:
        logger.info("refused a WebSocket token: %s", error)
        metrics.observe_websocket_refusal("UNAUTHENTICATED", None)
        raise ConnectionRejectionError({"message": "invalid or expired access token"}) from None
    except Exception as error:  # the registry unread: neither the client's fault nor a bug
        reason = transient_reason(error)
        if reason is None:
            raise
        metrics.observe_websocket_refusal("SERVICE_UNAVAILABLE", None)
        raise TryAgainLater.after(service_unavailable(reason)) from None
    refused = await rate_limiter.admit(websocket.state.primary, principal.client_id)
    if refused is not None:
        later = TryAgainLater.after(refused)
        metrics.observe_websocket_refusal(later.code, principal.client_id)
        raise later
    if not sockets.hold(principal.client_id):
        logger.info("refused a WebSocket from %s: too many connections", principal.client_id)
        metrics.observe_websocket_refusal("RATE_LIMITED", principal.client_id)
        raise TryAgainLater("RATE_LIMITED", "Too many connections for this client")

    async def still_authorised() -> bool:
        """Raises what the registry's reading raised when the database is away (db.errors'
        `is_transient`: away, or held up by a lock): whether the token stands is then not known."""
        try:
            return (await auth.authenticate(token)).principal == principal
        except InvalidToken:
            return False

    context.admit(principal)
    context.live = Live(websocket.state.changes, still_authorised, RECHECK_SECONDS)


def closed(context: Context, sockets: Sockets) -> None:
    """The connection is over, however it ended (either side closed it, it dropped, the server
    stopped): an admitted one (`live` set, as its place was taken in `admit`) gives its place
    back. A place never given back would lock its client out of the process."""
    if context.live is not None:
        sockets.release(context.principal.client_id)


async def lapsed(context: Context) -> bool:
    """Whether the connection's token no longer stands (revoked, narrowed or expired since
    `admit`), so the connection is to be closed: each subscribe message is authorised as an
    HTTP request is, not only the first message of the connection."""
    live = context.live
    if live is None or not await live.still_authorised():
        metrics.observe_websocket_refusal("UNAUTHENTICATED", context.principal.client_id or None)
        return True
    return False


async def until_lapsed(context: Context, idle: Callable[[], bool]) -> None:
    """Returns once the admitted connection's token no longer stands (`lapsed`), looking every
    RECHECK_SECONDS whether or not it runs subscriptions or sends anything: one running no
    subscription, or sending only pings, stayed open long after its token expired or its client
    was revoked. A running subscription checks the token itself, before each page and at least
    every RECHECK_SECONDS while it waits, and once it lapses completes, then the connection
    closes: the client is told so. A connection not `idle` once its token lapsed is given a
    round more for that; one still open then has a subscription stuck sending to a client that
    does not read, which checks nothing until its send returns: a revoked client kept its
    socket, and got pages once it read again. The check reads the client registry, which reads
    PostgreSQL after a notification about the client: while the database is away, the next
    round tries again."""
    live = context.live
    assert live is not None, "only an admitted connection has a token to lapse"
    while True:
        await asyncio.sleep(live.recheck_seconds)
        try:
            if await lapsed(context):
                break
        except Exception as error:
            if not is_transient(error):
                raise
    if not idle():
        await asyncio.sleep(live.recheck_seconds)


async def operation(
    context: Context,
    checks: OperationChecks,
    trusted: TrustedDocuments,
    rate_limiter: RateLimiter,
    payload: object,
) -> Any:
    """An admitted connection's subscribe message payload as it may run (a hash-only one with its
    registered document), or the Refusal to send. It counts as a request against the client's
    rate limit, as a POST does: otherwise one socket subscribing and completing again and again
    would read without limit. It meets the request guard's checks (its shape; its document's
    size, tokens and cost), as a POST's body does: otherwise a query sent beside a registered
    document's hash would run under that hash, and a document of a million aliases would run
    at all. Then a client held to its trusted documents may subscribe to no other."""
    assert isinstance(context.request, WebSocket)
    client_id = context.principal.client_id
    resolved = await rate_limiter.admit(context.request.state.primary, client_id)
    if resolved is None:
        resolved = checks.refusal(payload)
    if resolved is None:
        resolved = await trusted.resolve(context.request.state.engine, client_id, payload)
    return refused(context, resolved) if isinstance(resolved, Refusal) else resolved


def refused(context: Context, refusal: Refusal) -> Refusal:
    """`refusal` of a subscribe message, logged and counted under its codes."""
    client_id = context.principal.client_id
    for error in refusal.errors:
        code = str(error.get("extensions", {}).get("code", "INTERNAL"))
        logger.info("refused a subscribe message from %s: %s", client_id, code)
        metrics.observe_websocket_refusal(code, client_id)
    return refusal
