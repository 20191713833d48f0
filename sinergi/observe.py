"""One pass per HTTP request: its request id, its access-log line and its metrics, and the last
word on an exception nothing else caught.

An exception that escapes the app before the response has started is answered here as the
contract's `INTERNAL` error with a correlation id, logged in full under that id: never a bare
500 page, never the exception's text. At the token endpoint the answer has RFC 6749's error
shape (`server_error`), which a token client reads, with the contract's code beside it as its
other refusals have.

A request still running when the shutdown grace ends (`SINERGI_SHUTDOWN_GRACE`: uvicorn then
cancels its task) is answered here too, as an outage is: 503 `SERVICE_UNAVAILABLE` with
Retry-After, a mutation's error saying whether it `applied` a change (200 when it did, as an
outage after a commit is answered), rather than uvicorn's bare text 500; at the token endpoint
as its outages are, RFC 6749's `temporarily_unavailable`.

The middleware opens an `Exchange` (sinergi.exchange) that the guard and the GraphQL endpoint
fill in with the operation, client and error codes, and that log records read the request id
from. It is pure ASGI, not Starlette's BaseHTTPMiddleware, so the context variable reaches the
endpoint's task unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any
from urllib.parse import quote

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse

from auth.http import NO_STORE, TOKEN_PATH, token_unavailable
from sinergi import graphql_http, metrics
from sinergi.exchange import Exchange, begin, end
from sinergi.guard import PAYLOAD
from sinergi.http_edge import KEPT_PRIVATE
from sinergi.logs import AccessRecords
from sinergi.rate_limit import RETRY_AFTER_SECONDS
from sinergi.request_headers import header
from sinergi.request_ids import REQUEST_ID_HEADER, request_id_from

_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: debug only
_SNIFF_LIMIT = 16_384
_STOPPED = "the server stopped before it finished this request"
_PATH_AS_IS = "/:@!$&'()*+,;="
"""What RFC 3986 lets a path hold unencoded besides letters, digits and `-._~`."""
access_logger = logging.getLogger("sinergi.access")
access_records = AccessRecords(access_logger)
errors_logger = logging.getLogger("sinergi.errors")
_NO_STORE_HEADERS = [(name.lower().encode(), value.encode()) for name, value in NO_STORE.items()]
"""What the token endpoint's every answer carries, its 500 too."""


def internal_error(*, oauth: bool = False) -> tuple[str, bytes]:
    """A correlation id, and the coded error body that quotes it."""
    correlation_id = uuid.uuid4().hex
    message = f"Internal error; quote {correlation_id} when reporting it."
    if oauth:
        answer = {
            "error": "server_error",
            "error_description": message,
            "code": "INTERNAL",
            "correlationId": correlation_id,
        }
        return correlation_id, orjson.dumps(answer)
    error = {
        "message": message,
        "extensions": {"code": "INTERNAL", "correlationId": correlation_id},
    }
    return correlation_id, orjson.dumps({"errors": [error]})


def stopped(applied: bool | None, batch: int | None = None) -> tuple[int, bytes]:
    """The status and body answering a request the server stopped before it finished: an
    outage's, so that the client sends it again, unless it `applied` a change (a mutation that
    committed one, as its writes recorded it). Which of its changes were applied is not told
    then (a document's first mutation, not its second; a batch's mutation under way finishes
    after this answer): the client reads each back before sending any part again. `applied`
    is None for a request holding no mutation, or stopped before its operations were known. A
    `batch` of that many operations is answered as one, the same error for each."""
    extensions: dict[str, object] = {"code": "SERVICE_UNAVAILABLE"}
    message = _STOPPED
    if applied is not None:
        extensions["applied"] = applied
    if applied:
        message += (
            "; some or all of its changes may have been applied:"
            " read each back before sending any part of it again"
        )
    answer: GraphQLHTTPResponse = {"errors": [{"message": message, "extensions": extensions}]}
    answers = answer if batch is None else [answer] * batch
    json = graphql_http.MediaType.JSON
    return graphql_http.status(answers, json, changed=bool(applied)), orjson.dumps(answers)


def error_codes(body: bytes) -> list[str]:
    """The `extensions.code` of every error in a (small) JSON error response."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    answers = payload if isinstance(payload, list) else [payload]
    return [
        str(error["extensions"]["code"])
        for answer in answers
        if isinstance(answer, dict)
        for error in answer.get("errors") or []
        if isinstance(error, dict) and isinstance(error.get("extensions"), dict)
        if "code" in error["extensions"]
    ]


class Observer:
    def __init__(self, app: ASGIApp, *, routes: frozenset[str]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(request_id_from(header(scope, b"x-request-id")))
        token = begin(exchange)
        started = time.perf_counter()
        status = 500
        sniffed = bytearray()
        sniffing = False
        started_response = False

        async def observed_send(message: Message) -> None:
            nonlocal status, sniffing, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [
                    *(pair for pair in message.get("headers", ()) if pair[0] != _REQUEST_ID),
                    (_REQUEST_ID, exchange.request_id.encode()),
                ]
                # Refusals made outside GraphQL (401, 429, 400, 503) carry their code only in
                # their small JSON body; GraphQL answers have noted theirs already.
                sniffing = (
                    status >= 400 and not exchange.codes and _is_json(MutableHeaders(scope=message))
                )
            elif sniffing and len(sniffed) < _SNIFF_LIMIT:
                sniffed.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except asyncio.CancelledError:  # the shutdown grace ended
            if started_response:
                raise
            exchange.codes.append("SERVICE_UNAVAILABLE")
            errors_logger.warning("request %s stopped by the shutdown", exchange.request_id)
            if scope["path"] == TOKEN_PATH:  # RFC 6749 §5.2's shape, not GraphQL's
                refused = token_unavailable(f"{_STOPPED}; retry shortly")
                status, body, headers = (
                    refused.status_code,
                    bytes(refused.body),
                    refused.raw_headers,
                )
            else:
                applied = exchange.applied() if exchange.applied is not None else None
                operations = scope.get(PAYLOAD)  # the guard's, once it has read the body
                status, body = stopped(
                    applied, len(operations) if isinstance(operations, list) else None
                )
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *KEPT_PRIVATE,
                ]
                if status == 503:
                    headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
            headers.append((_REQUEST_ID, exchange.request_id.encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            raise
        except Exception:
            status = 500
            exchange.codes.append("INTERNAL")
            if started_response:  # too late to answer otherwise: the connection is dropped
                raise
            oauth = scope["path"] == TOKEN_PATH  # RFC 6749 §5.2's shape, not GraphQL's
            correlation_id, body = internal_error(oauth=oauth)
            errors_logger.exception("internal error %s", correlation_id)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (_REQUEST_ID, exchange.request_id.encode()),
            ]
            # A /graphql answer is never cached nor sniffed (sinergi.http_edge), nor is this one.
            headers.extend(_NO_STORE_HEADERS if oauth else KEPT_PRIVATE)
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if sniffed:
                exchange.codes.extend(error_codes(bytes(sniffed)))
            self._record(scope, exchange, status, time.perf_counter() - started)
            end(token)

    def _record(self, scope: Scope, exchange: Exchange, status: int, seconds: float) -> None:
        path: str = scope["path"]
        route = path if path in self.routes else "other"
        method: str = scope["method"]
        metrics.observe_request(
            method=method,
            route=route,
            status=status,
            seconds=seconds,
            operation=exchange.operation,
            client_id=exchange.client_id,
            codes=exchange.codes,
            state=scope.get("state", {}),
            graphiql=exchange.graphiql,
        )
        level = logging.DEBUG if path in _QUIET_PATHS and status < 500 else logging.INFO
        if not access_logger.isEnabledFor(level):
            return
        # Percent-encoded again: the scope's path is decoded, and a CR LF in it would forge lines
        # in the text log, an escape sequence drive the terminal that shows them.
        logged_path = quote(path, safe=_PATH_AS_IS)
        fields: dict[str, Any] = {
            "method": method,
            "path": logged_path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client_id": exchange.client_id,
            "operation": exchange.operation,
        }
        if exchange.codes:
            fields["error_codes"] = sorted(set(exchange.codes))
        access_logger.handle(access_records.make(level, f"{method} {logged_path} {status}", fields))


def _is_json(headers: MutableHeaders) -> bool:
    content_type = headers.get("content-type", "")
    return content_type.startswith(("application/json", "application/graphql-response+json"))
