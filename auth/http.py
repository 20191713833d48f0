"""The HTTP edge of auth: the token, JWKS and metadata endpoints and the bearer-token check."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from starlette.authentication import AuthenticationError, BaseUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from auth.clients import MAX_CLIENT_ID_LENGTH
from auth.principal import Principal
from auth.registry import ClientState
from auth.service import AuthService, OAuthError, authentication_failed
from auth.tokens import InvalidToken
from db.errors import transient_reason
from domain.text import UNSTORABLE, storable

logger = logging.getLogger("sinergi.auth")
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a password)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""RFC 6749 §5.1: no token endpoint answer is cached, by HTTP/1.1 or HTTP/1.0 caches."""
OUTAGE_RETRY_AFTER_SECONDS = 5
"""Retry-After of a token request met by a database outage (the pool exhausted included), as
/graphql answers one."""
MAX_FORM_BYTES = 8192
"""The largest token request body read. A client_credentials form is a few hundred bytes, and
the endpoint reads it from anyone, before any authentication."""


class PrincipalUser(BaseUser):
    principal: Principal
    client: ClientState
    """The client as the registry has it now (when it last wrote, say)."""

    def __init__(self, principal: Principal, client: ClientState) -> None:
        self.principal = principal
        self.client = client

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.client_id


class BadToken(AuthenticationError):
    """A bearer token was sent and refused."""


class AuthUnavailable(AuthenticationError):
    """The token could not be checked because the database is unreachable."""


async def bearer_user(conn: HTTPConnection) -> PrincipalUser | None:
    """The client an RFC 6750 bearer token stands for; None without an Authorization header
    (the endpoint refuses anonymous requests). Raises BadToken or AuthUnavailable, which
    `unauthorized` answers."""
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BadToken("expected a Bearer token")
    service: AuthService = conn.scope["state"]["auth"]  # the lifespan's, without a wrapper
    try:
        admitted = await service.authenticate(token.strip())
    except InvalidToken as error:
        logger.info("refused bearer token: %s", error)
        raise BadToken("invalid or expired access token") from None
    except Exception as error:
        reason = transient_reason(error)
        if reason is None:  # a bug, not an outage: INTERNAL, logged in full
            raise
        logger.warning("could not check a token: %s", error)
        raise AuthUnavailable(reason) from None
    return PrincipalUser(admitted.principal, admitted.state)


def unauthorized(conn: HTTPConnection, error: Exception | None) -> Response:
    """401 with an RFC 6750 challenge, or 503 when the token could not be checked at all."""
    if isinstance(error, AuthUnavailable):
        return _unavailable(str(error))
    challenge = 'Bearer realm="sinergi"'
    if error is not None:
        challenge += ', error="invalid_token", error_description="' + str(error) + '"'
    message = str(error) if error is not None else "an access token is required"
    body = {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})


def _unavailable(message: str) -> JSONResponse:
    """503 SERVICE_UNAVAILABLE with Retry-After, as /graphql answers an outage."""
    body = {"errors": [{"message": message, "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}
    retry_after = str(OUTAGE_RETRY_AFTER_SECONDS)
    return JSONResponse(body, status_code=503, headers={"Retry-After": retry_after})


def _oauth_error(error: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2's answer. Every 401 (invalid_client) carries a Basic challenge, however the
    client sent its credentials or if it sent none: RFC 9110 §15.5.2 requires one on any 401,
    and Basic is the scheme the endpoint authenticates clients with."""
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sinergi"'
    if error.status == 408:  # the rest of the body may still be arriving: no next request
        headers["Connection"] = "close"
    body: dict[str, Any] = {"error": error.error, "error_description": error.description}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
        body["code"] = error.code
        body["retryAfter"] = error.retry_after
    return JSONResponse(body, status_code=error.status, headers=headers)


def _basic_credentials(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding. Whatever
    does not decode is malformed credentials, a §5.2 invalid_client: bad base64, text that is
    not UTF-8, or a header that is not ASCII at all (which `b64decode` refuses with a bare
    ValueError, the parent of the other two)."""
    try:
        decoded = base64.b64decode(header, validate=True).decode()
    except ValueError:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise OAuthError("invalid_client", "malformed Basic credentials", 401)
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


class BodyDeadline(Protocol):
    """How long a body may take to arrive, from when its read starts: the lifespan's
    sinergi.guard.BodyDeadlines (SINERGI_BODY_TIMEOUT), which /graphql's bodies are read under."""

    seconds: float

    async def within(self, reading: Awaitable[bytes]) -> bytes:
        """`reading`, or TimeoutError once past the deadline."""
        ...


async def _bounded_body(request: Request) -> bytes:
    """The body within the deadline (SINERGI_BODY_TIMEOUT), or 408: the endpoint reads it from
    anyone, and one trickled a byte at a time would hold the connection for as long as its
    sender liked."""
    deadline: BodyDeadline = request.scope["state"]["deadlines"]
    try:
        return await deadline.within(_body_up_to_limit(request))
    except TimeoutError:
        raise OAuthError(
            "invalid_request", f"body: not received within {deadline.seconds:g} s", 408
        ) from None


async def _body_up_to_limit(request: Request) -> bytes:
    """The body, refused (413) as soon as it is known to be over MAX_FORM_BYTES: declared so, or
    read so far; the rest is never read, so a huge body costs no memory."""
    too_large = OAuthError("invalid_request", f"the body is over {MAX_FORM_BYTES} bytes", 413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise too_large
    return bytes(body)


def _form(body: bytes) -> dict[str, str]:
    """RFC 6749 §3.2: a parameter sent twice makes the request invalid."""
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise OAuthError("invalid_request", "a parameter was sent more than once")
    return form


def _sent_for_a_page(request: Request) -> bool:
    """Whether a browser sent this request on a web page's behalf: it names the page's origin
    (`Origin`, which a browser adds to every cross-origin request and form post) or says the
    page is of another site (`Sec-Fetch-Site`). A client-credentials client is a server, which
    sends neither; a page's form post, cross-site and without a preflight, must not count a
    wrong secret against the address the operator's browser sends from."""
    site = request.headers.get("sec-fetch-site")
    return "origin" in request.headers or site in ("cross-site", "same-site")


async def token_endpoint(request: Request) -> Response:
    """RFC 6749 §4.4 client credentials, with client_secret_basic or client_secret_post. With
    Basic, a client_id in the body naming another client is refused, not ignored: the token
    would be the Basic client's, not the one the body asked for. A request a web page sent is
    refused first, before anything is read, counted or checked (`_sent_for_a_page`)."""
    authorization = request.headers.get("authorization", "")
    basic = authorization.lower().startswith("basic ")
    try:
        if _sent_for_a_page(request):
            raise OAuthError(
                "access_denied",
                "a browser sent this for a web page (Origin or Sec-Fetch-Site): the token"
                " endpoint serves server-side clients, which send neither",
                403,
            )
        media_type = request.headers.get("content-type", "").split(";")[0]
        if media_type.strip().lower() != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "use application/x-www-form-urlencoded")
        form = _form(await _bounded_body(request))
        if form.get("grant_type") is None:
            raise OAuthError("invalid_request", "grant_type is required")
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
        posted = form.get("client_id"), form.get("client_secret")
        if basic:
            if posted[1] is not None:
                raise OAuthError("invalid_request", "use one client authentication method")
            client_id, secret = _basic_credentials(authorization[6:].strip())
            if posted[0] not in (None, client_id):  # the same id again names no other
                raise OAuthError(
                    "invalid_request",
                    "client_id in the body is not the client the Basic credentials name",
                )
        elif posted[0] is not None and posted[1] is not None:
            client_id, secret = posted[0], posted[1]
        else:
            raise OAuthError("invalid_client", "client authentication is required", 401)
        if not storable(client_id):  # no client has one, and no text column can store it
            raise OAuthError("invalid_request", f"client_id {UNSTORABLE}")
        if len(client_id) > MAX_CLIENT_ID_LENGTH:  # names nobody: answered as an unknown id,
            raise authentication_failed()  # without the throttle's rows (which it would outgrow)
        scope = form.get("scope")
        service: AuthService = request.scope["state"]["auth"]
        address = request.client.host if request.client is not None else "unknown"
        answer = await service.issue_token(client_id, secret, scope, address=address)
    except OAuthError as error:
        return _oauth_error(error)
    except Exception as error:
        reason = transient_reason(error)
        if reason is None:  # a bug, not an outage: INTERNAL, logged in full
            raise
        logger.warning("could not issue a token: %s", error)
        return token_unavailable(f"{reason}; retry shortly")
    return JSONResponse(answer, headers=NO_STORE)


def token_unavailable(description: str) -> JSONResponse:
    """RFC 6749 §5.2's answer to a token request that could not be served for now (a database
    outage, the server stopping): `temporarily_unavailable`, 503 with Retry-After, as /graphql
    answers an outage, the contract's code beside it."""
    unavailable = OAuthError(
        "temporarily_unavailable", description, 503, retry_after=OUTAGE_RETRY_AFTER_SECONDS
    )
    return _oauth_error(unavailable)


async def jwks_endpoint(request: Request) -> Response:
    """The published keys, read from the database: in an outage 503 with Retry-After, which a
    verifier's JWKS client retries, not INTERNAL."""
    service: AuthService = request.scope["state"]["auth"]
    try:
        published = await service.jwks()
    except Exception as error:
        reason = transient_reason(error)
        if reason is None:  # a bug, not an outage: INTERNAL, logged in full
            raise
        logger.warning("could not read the signing keys: %s", error)
        return _unavailable(f"{reason}; retry shortly")
    return JSONResponse(published, headers={"Cache-Control": "max-age=300"})


async def metadata_endpoint(request: Request) -> Response:
    service: AuthService = request.scope["state"]["auth"]
    return JSONResponse(service.metadata())
