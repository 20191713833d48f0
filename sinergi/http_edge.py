"""The outermost layer of `/graphql`: methods, content negotiation and GET, before the guard.

It answers what HTTP itself decides (405 for other methods, 406 when `Accept` allows no answer
we give, 415 for a POST body that is not JSON, GraphiQL for a browser in development), decodes a
GET's URL parameters into what a POST's JSON body decodes to, so the request guard, the token
check and the endpoint see one shape whatever the method, and gives every JSON answer the
negotiated media type. The rules themselves are sinergi.graphql_http's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sinergi import exchange
from sinergi.graphql_http import BadParameter, MediaType, get_parameters, negotiate, wants_html
from sinergi.guard import PAYLOAD
from sinergi.request_headers import header

PageRenderer = Callable[[Request], Awaitable[Response]]
ALLOWED_METHODS = "GET, POST"
KEPT_PRIVATE = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))
"""On every answer of the endpoint, whatever its status: it may hold personal data, which no
cache on the way may keep, and its JSON is never to be sniffed into HTML by a browser."""


def refused(field: str, reason: str) -> dict[str, object]:
    """The body of a coded refusal of the HTTP request itself, naming the part at fault."""
    error = {
        "message": f"{field}: {reason}",
        "extensions": {"code": "BAD_USER_INPUT", "field": field},
    }
    return {"errors": [error]}


def refusal(
    status: int, field: str, reason: str, headers: dict[str, str] | None = None
) -> Response:
    """A coded refusal of the HTTP request itself, as a response (`refused`)."""
    return JSONResponse(refused(field, reason), status_code=status, headers=headers)


def method_not_allowed(allowed: str, reason: str) -> Response:
    return refusal(405, "method", reason, {"Allow": allowed})


async def unknown_path(request: Request, error: Exception) -> Response:
    """Starlette's router answers an unknown path in text/plain; a client parsing our errors
    gets the contract's shape instead."""
    body = {
        "errors": [
            {
                "message": "path: no such endpoint",
                "extensions": {"code": "NOT_FOUND", "field": "path"},
            }
        ]
    }
    return JSONResponse(body, status_code=404)


async def unsupported_method(request: Request, error: Exception) -> Response:
    """Starlette's route refuses another method in text/plain; its `Allow` header is kept."""
    headers = error.headers if isinstance(error, HTTPException) else None
    allowed = (headers or {}).get("Allow", "")
    return method_not_allowed(allowed, f"{request.method} is not supported here; use {allowed}")


def _content_type_error(content_type: str | None) -> str | None:
    """Why a POST body cannot be read as GraphQL over HTTP's JSON, or None when it can."""
    if content_type is None:
        return "required; send application/json"
    media, *parameters = content_type.split(";")
    if media.strip().lower() != MediaType.JSON:
        return f"{media.strip()!r} is not supported; send application/json"
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return "the body must be UTF-8"
    return None


def _answering_in(media_type: MediaType, send: Send) -> Send:
    """Every JSON answer goes out in the negotiated media type; any answer varies by Accept and
    is KEPT_PRIVATE (once: GraphiQL's page says so itself). The response's raw header list is
    edited in place: this runs for every answer."""
    negotiated_type = f"{media_type}; charset=utf-8".encode()
    json_type = MediaType.JSON.encode()

    async def negotiated(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            vary = None
            unsaid = dict(KEPT_PRIVATE)
            for index, (name, value) in enumerate(headers):
                lowered = name.lower()
                if lowered == b"content-type" and value.startswith(json_type):
                    headers[index] = (name, negotiated_type)
                elif lowered == b"vary":
                    vary = index
                elif lowered in unsaid:
                    headers[index] = (name, unsaid.pop(lowered))
            headers.extend(unsaid.items())
            if vary is None:
                headers.append((b"vary", b"Accept"))
            else:
                mutable = MutableHeaders(raw=headers)
                mutable.add_vary_header("Accept")
                headers = mutable.raw
            message["headers"] = headers
        await send(message)

    return negotiated


class GraphQLOverHTTP:
    """For HTTP requests to the endpoint only (sinergi.app builds their pipeline)."""

    def __init__(self, app: ASGIApp, *, graphiql: PageRenderer | None) -> None:
        """`graphiql` renders the IDE for browsers: development only, None otherwise."""
        self.app = app
        self.graphiql = graphiql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, accept = scope["method"], header(scope, b"accept")
        if method not in ("GET", "POST"):
            answer = method_not_allowed(ALLOWED_METHODS, f"{method} is not supported")
            await answer(scope, receive, _answering_in(MediaType.JSON, send))
            return
        if method == "GET" and self.graphiql is not None and wants_html(accept):
            now = exchange.current()
            if now is not None:
                now.graphiql = True
            page = await self.graphiql(Request(scope, receive))
            await page(scope, receive, _answering_in(MediaType.JSON, send))
            return
        media_type = negotiate(accept)
        if media_type is None:
            answer = refusal(
                406, "Accept", f"answers are {MediaType.GRAPHQL_RESPONSE} or {MediaType.JSON}"
            )
            await answer(scope, receive, _answering_in(MediaType.JSON, send))
            return
        send = _answering_in(media_type, send)
        if method == "POST":
            problem = _content_type_error(header(scope, b"content-type"))
            if problem is not None:
                await refusal(415, "Content-Type", problem)(scope, receive, send)
                return
        else:
            parameters = get_parameters(scope["query_string"])
            if isinstance(parameters, BadParameter):
                answer = refusal(400, parameters.parameter, parameters.reason)
                await answer(scope, receive, send)
                return
            scope[PAYLOAD] = parameters
        await self.app(scope, receive, send)
