"""The GraphQL endpoint: refuses unauthenticated requests, then builds the per-request context."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult

from auth.http import unauthorized
from resolvers.context import Context, Limits
from schema.engine import Engine
from schema.errors import coded
from sinergi import exchange
from sinergi.graphql_http import MediaType, is_mutation, negotiate, settled, status
from sinergi.guard import replay
from sinergi.http_edge import method_not_allowed
from sinergi.rate_limit import RETRY_AFTER_SECONDS, RateLimiter
from sinergi.trusted_documents import TrustedDocuments

DemoToken = Callable[[], Awaitable[str]]


class SinergiGraphQL(GraphQL[Context, None]):
    def __init__(
        self,
        schema: Any,
        *,
        limits: Limits,
        rate_limiter: RateLimiter,
        trusted: TrustedDocuments,
        demo_token: DemoToken | None,
        figures_cache_seconds: int = 0,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if demo_token is not None else None,
            allow_queries_via_get=True,
        )
        self.limits = limits
        self.rate_limiter = rate_limiter
        self.trusted = trusted
        self.demo_token = demo_token
        self.engine = Engine(schema, figures_cache_seconds=figures_cache_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET and POST alike: sinergi.http_edge has made a GET's parameters into the body."""
        request = Request(scope, receive)
        if scope["type"] == "http":
            if not request.user.is_authenticated:
                await unauthorized(request, None)(scope, receive, send)
                return
            client_id = request.user.principal.client_id
            now = exchange.current()
            if now is not None:
                now.client_id = client_id
            admission = await self.rate_limiter.admit(request.state.primary, request.user.hit)
            if admission.refusal is not None:
                await admission.refusal(scope, receive, send)
                return
            request.state.wrote_recently = admission.wrote_recently
            request.state.write_noted = admission.write_noted
            resolved = await self.trusted.resolve(
                request.state.engine, client_id, await request.body()
            )
            if isinstance(resolved, Response):
                await resolved(scope, receive, send)
                return
            payload = _payload(resolved)
            if request.method == "GET" and isinstance(payload, dict) and is_mutation(payload):
                refusal = method_not_allowed("POST", "a GET runs queries only; POST mutations")
                await refusal(scope, receive, send)
                return
            answered = await self.engine.answer(self._context(request), payload)
            if answered is not None:
                answer = (
                    # errors are coded, counted and given their status as Strawberry's are
                    self.create_response(
                        cast(GraphQLHTTPResponse, answered), await self.get_sub_response(request)
                    )
                    if "errors" in answered
                    # in the negotiated media type (sinergi.http_edge)
                    else Response(orjson.dumps(answered), media_type="application/json")
                )
                await answer(scope, receive, send)
                return
            receive = replay(resolved, receive)
        await super().__call__(scope, receive, send)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Settles the answers and their status (sinergi.graphql_http) in the media type the
        request negotiated, and notes the error codes for metrics and logs; an outage answers
        503 with Retry-After, so clients and load balancers retry."""
        answers = (
            [settled(answer) for answer in response_data]
            if isinstance(response_data, list)
            else settled(response_data)
        )
        every: list[Any] = answers if isinstance(answers, list) else [answers]
        now = exchange.current()
        if now is not None:
            now.codes.extend(
                str((error.get("extensions") or {}).get("code"))
                for answer in every
                for error in answer.get("errors") or []
            )
        media_type = MediaType(sub_response.media_type or MediaType.JSON)
        sub_response.status_code = status(answers, media_type)
        if sub_response.status_code == 503:
            sub_response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return super().create_response(answers, sub_response)

    def encode_json(self, data: object) -> bytes:
        """orjson: several times faster than the standard library on large pages."""
        return orjson.dumps(data)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        """Errors strawberry reports outside the operation hooks get their contract code here."""
        if result.errors:
            result.errors = coded(result.errors)
        return await super().process_result(request, result)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """Carries the media type the request negotiated (sinergi.http_edge refused the request
        if there was none) to `create_response`."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate(request.headers.get("accept")) or MediaType.JSON
        return sub_response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The operations in the JSON body, whatever the method: for a GET, sinergi.http_edge
        made the body from the URL's parameters. The request guard has checked its shape."""
        payload = self.parse_json(await request.get_body())
        operations = [
            GraphQLRequestData(
                query=operation.get("query"),
                variables=operation.get("variables"),
                operation_name=operation.get("operationName"),
                extensions=operation.get("extensions"),
            )
            for operation in (payload if isinstance(payload, list) else [payload])
        ]
        return operations if isinstance(payload, list) else operations[0]

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Never here: sinergi.http_edge serves GraphiQL, to browsers only."""
        return False

    async def get_context(self, request: Any, response: Any) -> Context:
        return self._context(request)

    def _context(self, request: Any) -> Context:
        return Context(
            principal=request.user.principal,
            engine=request.state.engine,
            autocommit_view=request.state.primary,
            replica=request.state.replica,
            wrote_recently=request.state.wrote_recently,
            write_noted=request.state.write_noted,
            region_directory=request.state.regions,
            audit_writer=request.state.audit,
            limits=self.limits,
            request=request,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL with a short-lived demo token already in its headers."""
        assert self.demo_token is not None
        headers = json.dumps({"Authorization": f"Bearer {await self.demo_token()}"})
        html = self.graphql_ide_html.replace(
            "const defaultHeaders = {};", f"const defaultHeaders = {headers};"
        )
        return HTMLResponse(html)


def _payload(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
