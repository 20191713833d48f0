"""The GraphQL endpoint: holds the client the request guard found the token to stand for, and
admitted under its rate limit, to its trusted documents, then builds the per-request context.

It works on the request as the guard decoded it (sinergi.guard's `payload`): the body is never
decoded again, here or by strawberry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Mapping
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from json import JSONDecodeError
from typing import Any, cast

import orjson
from cross_web import AsyncHTTPRequestAdapter, StarletteRequestAdapter
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from starlette.websockets import WebSocketDisconnected as SentAfterClose
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    Message,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult

from auth.http import PrincipalUser
from db.errors import is_transient, transient_reason
from resolvers.context import Context, Limits
from schema.engine import Engine
from schema.errors import coded
from schema.limits import Violation
from schema.query_limits import QueryLimits
from sinergi import exchange, metrics, subscriptions
from sinergi.graphql_http import (
    MediaType,
    is_mutation,
    mutation_fields,
    negotiate,
    operation_type,
    settled,
    status,
    withheld,
)
from sinergi.guard import PAYLOAD, OperationChecks, Refusal, bad_request, payload, too_complex
from sinergi.http_edge import method_not_allowed
from sinergi.rate_limit import RETRY_AFTER_SECONDS, RateLimiter, service_unavailable
from sinergi.request_context import context_for
from sinergi.trusted_documents import TrustedDocuments


class _RequestAdapter(StarletteRequestAdapter):
    """Strawberry's adapter, keeping the request's scope, where the guard's payload is."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.scope = request.scope


class _TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages as text frames: a browser's client (GraphiQL's, graphql-ws)
    parses only those. The view's `encode_json` gives bytes, right for HTTP bodies, which
    Strawberry would send as binary frames."""

    max_frame_chars = subscriptions.ADMISSION_FRAME_CHARS
    """Until the connection is acknowledged; then the view's (`_TransportWSHandler`)."""

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        """The frames decoded, each only once its length is found within `max_frame_chars`: a
        longer one closes the connection (TOO_BIG_CLOSE_CODE) undecoded. Anonymous frames of
        16 MB were decoded before the token was checked, each into some 600 MB. One nested too
        deeply to decode (RecursionError, which would drop the socket unclosed) is malformed
        JSON, which closes it with 4400 like any other. `ignore_parsing_errors` is the legacy
        graphql-ws protocol's, which is not spoken here."""
        try:
            while self.ws.application_state is not WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if len(text) > self.max_frame_chars:
                    reason = f"Message longer than {self.max_frame_chars} characters"
                    await self.close(subscriptions.TOO_BIG_CLOSE_CODE, reason)
                    return
                try:
                    message = self.view.decode_json(text)
                except (JSONDecodeError, RecursionError) as error:
                    raise NonJsonMessageReceived from error
                yield message
        except KeyError as error:  # a binary frame: Starlette's message has no "text"
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            return

    async def send_json(self, message: Mapping[str, object]) -> None:
        """A message due once another task has closed the connection (its token lapsed, say:
        `_TransportWSHandler`), a pong to a ping that came in before, ends the connection's
        handling as a dropped one does: Starlette refuses the send with an error of its own."""
        await self.send_text(orjson.dumps(message).decode())

    async def send_text(self, text: str) -> None:
        """A message encoded already, sent as `send_json` sends one."""
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, SentAfterClose) as disconnect:
            raise WebSocketDisconnected from disconnect

    async def close(self, code: int, reason: str) -> None:
        """Closing a connection already closed, by either side, is nothing to do: a subscription
        ending when its client's authorisation lapsed closes the connection, which the client
        or another subscription may have closed meanwhile."""
        if self.ws.application_state is WebSocketState.DISCONNECTED:
            return
        with suppress(WebSocketDisconnect):
            await super().close(code, reason)


def _well_formed(message: object) -> bool:
    """Whether a decoded frame is a message strawberry can read: an object whose `type`, and
    `id` if any, are strings (what each type's other fields hold, it checks itself)."""
    return (
        isinstance(message, dict)
        and isinstance(message.get("type"), str)
        and isinstance(message.get("id", ""), str)
    )


def _ended_by_outage(payload: Mapping[str, Any]) -> bool:
    """Whether a `next` payload is what strawberry makes of a subscription whose stream raised
    an outage (the token's recheck, or a page's read, met the database away): no data, and one
    error at no path, coded SERVICE_UNAVAILABLE by schema.errors (which logged it). A field's
    error has a path, and its subscription goes on."""
    errors = payload.get("errors") or []
    return (
        payload.get("data") is None
        and len(errors) == 1
        and "path" not in errors[0]
        and (errors[0].get("extensions") or {}).get("code") == "SERVICE_UNAVAILABLE"
    )


_LIMIT_REACHED = GraphQLError("Subscription limit reached").formatted
"""Strawberry's refusal of a subscription past `max_subscriptions_per_connection`: no code."""


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with each subscribe message authorised again, counted against the
    client's rate limit and held to the request guard's checks and the client's trusted
    documents (sinergi.subscriptions' `lapsed` and `operation`) before strawberry runs it, and
    each connection holding one of its client's places (sinergi.subscriptions' `Sockets`)."""

    watch: asyncio.Task[None] | None = None
    """Closes the acknowledged connection once its token no longer stands (`_close_once_lapsed`),
    whether or not it sends anything."""
    reader: asyncio.Task[Any] | None = None
    """The task reading the connection's messages (`handle`), which the watch cancels to end a
    connection it cannot close (`_cut`)."""
    cut = False

    async def handle(self) -> None:
        """The connection's place is given back however the connection ends: closed by either
        side, dropped, failed, cut by its watch (`_cut`) or cancelled as the server stops; after
        its subscriptions have stopped reading (strawberry's `shutdown`) and its token is no
        longer watched. Cut, it ends as one closed does: uvicorn then closes the transport."""
        reader = self.reader = asyncio.current_task()
        assert reader is not None
        try:
            await super().handle()
        except asyncio.CancelledError:
            if not self.cut:
                raise
            reader.uncancel()
        finally:
            if self.watch is not None:
                self.watch.cancel()
                with suppress(asyncio.CancelledError):
                    await self.watch
            assert isinstance(self.view, SinergiGraphQL)
            subscriptions.closed(self.context, self.view.sockets)

    async def _close_once_lapsed(self) -> None:
        """A connection running no subscription, or sending only pings, stayed open and
        answering long after its token expired or its client was revoked: the token was checked
        only for a subscribe message or by a running subscription (which still does it, and
        closes the connection as it completes: `run_operation`). A failure of the check itself
        is a bug, logged as strawberry logs its tasks' (sinergi.subscriptions' `until_lapsed`
        waits out an outage, and a lock held past the lock timeout)."""
        try:
            await subscriptions.until_lapsed(self.context, idle=lambda: not self.operations)
        except Exception as error:
            await self.handle_task_exception(error)
            return
        await self._cut()

    async def _cut(self) -> None:
        """Ends a connection whose token no longer stands. Its subscriptions still running are
        stuck sending to a client that does not read (`until_lapsed`): they are stopped as a
        client's `complete` stops them, their sends with them, so no page more goes out. The
        4403 close then waits, as every send does, until the client reads what was sent
        before; waiting for ever, a revoked client kept its socket, its place and its
        subscriptions. One not sent within RECHECK_SECONDS ends the connection unclosed: its
        reading task is cancelled, and uvicorn closes the transport as for any connection that
        ends (ASGI has no way to abort one): what went out before the token lapsed still
        reaches the client if it reads, then the connection drops without a close frame."""
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        try:
            async with asyncio.timeout(subscriptions.RECHECK_SECONDS):
                await self.websocket.close(code=4403, reason="Forbidden")
        except TimeoutError:
            assert self.reader is not None
            self.cut = True
            self.reader.cancel()

    async def handle_message(self, message: Message) -> None:
        """A frame that is not a JSON object whose `type`, and `id` if it has one, are strings
        closes the connection with 4400, as strawberry closes one without a `type`: strawberry
        reads such a message with TypeError (`[1]["type"]`, a list `id` looked up among its
        operations), which dropped the socket without a close frame and logged a traceback,
        for anyone, before any token was checked."""
        if not _well_formed(message):
            await self.handle_invalid_message("Failed to parse message")
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """A client over its rate limit, or already holding as many connections as it may, is
        refused with a close code of its own (sinergi.subscriptions' TRY_AGAIN_LATER_CLOSE_CODE),
        not a bad token's 4403, which strawberry gives any ConnectionRejectionError. Once
        acknowledged, the connection may send frames as long as a subscribe message may be, and
        its token is watched. A null payload, which the protocol allows (a client whose token
        is in the upgrade request's header has nothing to send), is an empty one: strawberry
        closed such a connection with 4400."""
        if message.get("payload", {}) is None:
            message = {"type": "connection_init", "payload": {}}
        try:
            await super().handle_connection_init(message)
        except subscriptions.TryAgainLater as later:
            code = subscriptions.TRY_AGAIN_LATER_CLOSE_CODE
            await self.websocket.close(code=code, reason=later.reason)
            return
        if self.connection_acknowledged:
            assert isinstance(self.view, SinergiGraphQL)
            assert isinstance(self.websocket, _TextFrames)
            self.websocket.max_frame_chars = self.view.checks.limits.max_frame_chars
            self.watch = asyncio.create_task(self._close_once_lapsed())

    async def send_message(self, message: Message) -> None:
        """Strawberry's refusal of a subscription past the connection's limit goes out as
        QUERY_TOO_COMPLEX naming the limit, as a batch past its own does, and is counted as
        the other refused subscribe messages are: every error a client gets carries a code.
        A running subscription met by an outage (`_ended_by_outage`) ends with an `error`
        message, as a subscribe message met by one is refused: strawberry sent a `next` of no
        data and then `complete`, which a client takes for a feed that ended for good."""
        if message["type"] == "error" and message["payload"] == [_LIMIT_REACHED]:
            limit = self.max_subscriptions_per_connection or 0
            refused = too_complex(Violation("subscriptions per connection", limit, limit + 1))
            client_id = self.context.principal.client_id
            metrics.observe_websocket_refusal("QUERY_TOO_COMPLEX", client_id)
            message = ErrorMessage(id=message["id"], type="error", payload=refused.errors)
        elif message["type"] == "next" and not _ended_by_outage(message["payload"]):
            # Encoded once, to be measured against the response size bound and sent.
            assert isinstance(self.view, SinergiGraphQL)
            assert isinstance(self.websocket, _TextFrames)
            text = orjson.dumps(message)
            if len(text) > self.view.max_response_bytes:
                await self._too_large(message["id"], len(text), self.view.max_response_bytes)
            else:
                await self.websocket.send_text(text.decode())
            return
        elif message["type"] == "next" and _ended_by_outage(message["payload"]):
            # The operation ends here: strawberry's `complete` after it is not sent.
            operation = self.operations.get(message["id"])
            if operation is not None:
                operation.completed = True
                self.forget_id(operation.id)
            message = ErrorMessage(
                id=message["id"], type="error", payload=message["payload"]["errors"]
            )
        await super().send_message(message)

    async def _too_large(self, operation_id: str, size: int, bound: int) -> None:
        """A page over the response size bound ends its subscription with the error HTTP gives
        an answer over it (QUERY_TOO_COMPLEX, `response size`), unsent: the cost estimate let
        it through, and one page of 14 MB waited in memory for a client that never read it. Its
        task is stopped as a client's `complete` stops it, so it reads no further page. The
        page was audited before it was sent (resolvers.change_feed `follow`): the trail
        over-states what went out, never under-states it."""
        operation = self.operations.get(operation_id)
        if operation is None:
            return
        operation.completed = True
        self.forget_id(operation_id)
        refused = subscriptions.refused(
            self.context, too_complex(Violation("response size", bound, size))
        )
        await super().send_message(
            ErrorMessage(id=operation_id, type="error", payload=refused.errors)
        )
        assert operation.task is not None
        operation.task.cancel()  # the task sending this message: it ends at its next await

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # Before the ack, or for an id in use, strawberry closes the connection: nothing to check.
        if self.connection_acknowledged and message["id"] not in self.operations:
            assert isinstance(self.view, SinergiGraphQL)
            # The token's recheck and the operation's resolving (a persisted document's lookup,
            # the rate limit) read the database: out, this message is refused, not the socket.
            try:
                if await subscriptions.lapsed(self.context):
                    await self.websocket.close(code=4403, reason="Forbidden")
                    return
                resolved: Any = await subscriptions.operation(
                    self.context,
                    self.view.checks,
                    self.view.trusted,
                    self.view.rate_limiter,
                    message.get("payload"),
                )
            except Exception as error:
                reason = transient_reason(error)
                if reason is None:
                    raise
                resolved = subscriptions.refused(self.context, service_unavailable(reason))
            if isinstance(resolved, Refusal):
                refused = ErrorMessage(id=message["id"], type="error", payload=resolved.errors)
                await self.send_message(refused)
                return
            message = SubscribeMessage(id=message["id"], type="subscribe", payload=resolved)
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """A subscription that ended because the client's authorisation lapsed (resolvers'
        change_feed `follow`) takes the connection with it (4403), as a bad token does at
        `connection_init`: the client learns its token no longer stands rather than subscribing
        again to be refused. With the database away, whether it lapsed is not known: the
        connection stays, and `_close_once_lapsed` looks again (the check raised, unlogged, in
        strawberry's task)."""
        await super().run_operation(operation)
        try:
            if await subscriptions.lapsed(self.context):
                await self.websocket.close(code=4403, reason="Forbidden")
        except Exception as error:
            if not is_transient(error):
                raise


@dataclass(slots=True)
class _Answered:
    """One request's operations, as the guard resolved them, and for a batch how its answers
    stand against the response size bound: the bytes answered so far, the operations that are
    mutations, the one whose answer passed the bound and those that came after it."""

    operations: object
    size: int = 0
    mutations: list[bool] = field(default_factory=list)
    passing: int | None = None
    after: set[int] = field(default_factory=set)
    contexts: dict[int, Context] = field(default_factory=dict)
    """Each operation's own context, by its place in the batch (0 for a single one)."""
    finishing: bool = False
    """Whether a batch's mutation is under way, shielded: it finishes, and may commit, even
    after the request is cancelled (`_in_order`)."""

    def changed(self, index: int) -> bool:
        """Whether the operation committed a change, as its writes recorded it (Context's
        `changed`)."""
        context = self.contexts.get(index)
        return context is not None and context.changed

    def commit_lost(self, index: int) -> bool:
        """Whether a write of the operation lost its connection as it committed (Context's
        `commit_lost`): it may have been stored."""
        context = self.contexts.get(index)
        return context is not None and context.commit_lost

    def may_have_applied(self, index: int) -> bool:
        """Whether the operation committed a change or may have (`commit_lost`): what a
        mutation whose answer is withheld says it applied, and a write the batch's later
        operations read after, on the primary (`_in_order`)."""
        return self.changed(index) or self.commit_lost(index)

    def any_in_doubt(self) -> bool:
        """Whether any of its operations committed a change or may have (`may_have_applied`)."""
        return any(self.may_have_applied(index) for index in self.contexts)

    def may_have_changed(self) -> bool:
        """Whether a change may be committed by the time a cancelled request is answered: one
        was, a batch's mutation under way will finish regardless, or a write was cut short with
        its commit in flight (Context's `committing`). Told as applied, so that the client
        reads back before sending it again rather than apply it twice."""
        return (
            self.finishing
            or self.any_in_doubt()
            or any(context.committing for context in self.contexts.values())
        )


_ANSWERED: ContextVar[_Answered | None] = ContextVar("sinergi_answered", default=None)
"""The request's, where Strawberry's view answers it; a batch's operations, run as tasks of
their own, share the request's."""


class SinergiGraphQL(GraphQL[Context, None]):
    request_adapter_class = _RequestAdapter
    graphql_transport_ws_handler_class = _TransportWSHandler
    websocket_adapter_class = _TextFrames

    def __init__(
        self,
        schema: Any,
        *,
        limits: Limits,
        rate_limiter: RateLimiter,
        checks: OperationChecks,
        trusted: TrustedDocuments,
        max_tokens: int,
        read_your_writes_seconds: int = 10,
        figures_cache_seconds: int = 0,
        max_response_bytes: int = QueryLimits().max_response_bytes,
        max_sockets_per_client: int,
        connections_per_request: int,
        init_timeout_seconds: float,
    ) -> None:
        """`max_tokens`: the request guard's, whose parsed documents this reuses;
        `read_your_writes_seconds`: how long after a write a client reads nothing that lags;
        `max_sockets_per_client`: the WebSocket connections a client may hold open at once;
        `connections_per_request`: the pooled connections one request may hold at once (its
        figure tables and other reads run that many at a time), so that no request alone
        leaves other clients waiting for the pool; `init_timeout_seconds`: how long a WebSocket
        may stay open before its `connection_init` (its token) arrives, as long as a POST has to
        send its body: Strawberry's default minute let anyone hold sockets open unidentified."""
        super().__init__(
            schema,
            graphql_ide=None,
            allow_queries_via_get=True,
            # Only the protocol whose subscribe messages are checked (_TransportWSHandler): the
            # legacy graphql-ws one would run any document for a client held to its own.
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # One per feed: each subscription reads on its own every few seconds.
            max_subscriptions_per_connection=4,
            connection_init_wait_timeout=timedelta(seconds=init_timeout_seconds),
        )
        self.limits = limits
        self.rate_limiter = rate_limiter
        self.checks = checks
        self.trusted = trusted
        self.max_response_bytes = max_response_bytes
        self.connections_per_request = connections_per_request
        self.sockets = subscriptions.Sockets(max_sockets_per_client)
        self.max_tokens = max_tokens
        self.fresh_seconds = read_your_writes_seconds
        self.engine = Engine(
            schema, figures_cache_seconds=figures_cache_seconds, max_tokens=max_tokens
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET and POST alike: sinergi.http_edge has decoded a GET's parameters as a body."""
        if scope["type"] == "http":
            request = Request(scope, receive)
            user: PrincipalUser = scope["user"]  # the request guard checked the token
            client_id = user.principal.client_id
            state = scope["state"]  # the lifespan's, copied for this request
            state["connections"] = asyncio.Semaphore(self.connections_per_request)
            decoded = payload(scope)  # the guard admitted it under the rate limit
            # A write note moments old need not be renewed; it keeps the client's reads off
            # what may lag for twice the window, since a write within half of it is not noted.
            since_write = time.monotonic() - user.client.written_at
            state["wrote_recently"] = since_write < 2 * self.fresh_seconds
            state["write_noted"] = since_write < self.fresh_seconds / 2
            state["noted_at"] = user.client.written_at  # a slow write renews it once committed
            resolved = await self.trusted.resolve(state["engine"], client_id, decoded)
            if isinstance(resolved, Response):
                await resolved(scope, receive, send)
                return
            scope[PAYLOAD] = resolved
            request_answered = _Answered(resolved)
            _ANSWERED.set(request_answered)
            now = exchange.current()
            operations = resolved if isinstance(resolved, list) else [resolved]
            if now is not None and any(is_mutation(each, self.max_tokens) for each in operations):
                now.applied = request_answered.may_have_changed
            if (
                request.method == "GET"
                and isinstance(resolved, dict)
                and is_mutation(resolved, self.max_tokens)
            ):
                subscription = operation_type(resolved, self.max_tokens) is (
                    OperationType.SUBSCRIPTION
                )
                not_allowed = method_not_allowed(
                    "POST",
                    "a subscription runs over a WebSocket (graphql-transport-ws) at this address,"
                    " not over GET or POST"
                    if subscription
                    else "a GET runs queries only; POST mutations",
                )
                await not_allowed(scope, receive, send)
                return
            if any(
                operation_type(operation, self.max_tokens) is OperationType.SUBSCRIPTION
                for operation in (resolved if isinstance(resolved, list) else [resolved])
            ):  # run over HTTP, its root field gives a stream where a value is due: INTERNAL
                refused = bad_request(
                    "query", "a subscription runs over a WebSocket (graphql-transport-ws)"
                )
                await refused(scope, receive, send)
                return
            # A mutation's every root field beyond the first is counted once more: the guard
            # counted each operation once, and 30 aliased writes stored 30 decisions.
            writes = sum(max(0, mutation_fields(each, self.max_tokens) - 1) for each in operations)
            if writes:
                limited = await self.rate_limiter.admit(state["primary"], client_id, writes)
                if limited is not None:
                    await limited(scope, receive, send)
                    return
            context = request_answered.contexts[0] = self._context(request)
            answered = await self.engine.answer(context, resolved)
            if answered is not None:
                answer = (
                    # errors are coded, counted and given their status as Strawberry's are
                    self.create_response(
                        cast(GraphQLHTTPResponse, answered), await self.get_sub_response(request)
                    )
                    if "errors" in answered
                    # in the negotiated media type (sinergi.http_edge)
                    else self._bounded(
                        Response(orjson.dumps(answered), media_type="application/json"),
                        cast(GraphQLHTTPResponse, answered),
                    )
                )
                await answer(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        """A batch's operations run at once, as Strawberry runs them, each answer counted toward
        the response size bound as soon as it is made (`_counted`). Once their answers together
        pass it, the queries still running are stopped: ten operations of 5 MB each were all
        built, and encoded, before the whole was found too large. A mutation still running
        finishes: stopped, it would roll back while the batch's other writes stay committed;
        `create_response` answers it with what it applied in place of its data. A batch that
        holds a mutation runs in its order instead (`_in_order`)."""
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        answered = _ANSWERED.get()
        assert answered is not None  # __call__ sets it for every request it hands on
        answered.mutations = [
            is_mutation(
                {"query": data.query, "operationName": data.operation_name}, self.max_tokens
            )
            for data in request_data
        ]
        if any(answered.mutations):
            return await self._in_order(
                request, request_adapter, request_data, context, root_value, sub_response, answered
            )
        running = [
            asyncio.ensure_future(
                self._counted(
                    answered,
                    index,
                    self.execute_single(
                        request, request_adapter, sub_response, context, root_value, data, index
                    ),
                )
            )
            for index, data in enumerate(request_data)
        ]
        pending: set[asyncio.Future[ExecutionResult]] = set(running)
        try:
            while pending and answered.passing is None:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:  # past the bound, or the request cancelled: no query needs to finish
            for task, mutation in zip(running, answered.mutations, strict=True):
                if not mutation:
                    task.cancel()  # nothing, for one already answered
        await asyncio.gather(*pending, return_exceptions=True)
        results = []
        for index, task in enumerate(running):
            if task.cancelled():
                answered.after.add(index)
                # a place for create_response's error (`_past_bound`)
                results.append(ExecutionResult(data=None, errors=None))
            else:
                results.append(task.result())
        return results

    async def _in_order(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
        answered: _Answered,
    ) -> list[ExecutionResult]:
        """A batch that holds a mutation: its operations one after the other, in the array's
        order, as the root fields of one mutation document run. Run at once, an update chained
        on the one before it (its version the one that leaves) met the record unchanged and got
        CONFLICT, and of two at one version the later could win. Past the size bound, the
        queries left are not run (`create_response` says so in their place); the mutations left
        still run, as they did at once, each answered with what it applied. Once one committed
        a change, or may have (`may_have_applied`), those after it read on the primary, as the
        client's next request would: the request's reads were bound for a replica that may lag
        when it began. A mutation under way when the request is cancelled finishes, and none
        after it starts."""
        results = []
        for index, data in enumerate(request_data):
            mutation = answered.mutations[index]
            if answered.passing is not None and not mutation:
                answered.after.add(index)
                results.append(ExecutionResult(data=None, errors=None))  # `_past_bound`'s place
                continue
            executed = self._counted(
                answered,
                index,
                self.execute_single(
                    request, request_adapter, sub_response, context, root_value, data, index
                ),
            )
            if mutation:
                answered.finishing = True
                results.append(await asyncio.shield(executed))  # cancelled: stays finishing
                answered.finishing = False
            else:
                results.append(await executed)
            if answered.may_have_applied(index):
                wrote = answered.contexts[index]
                request.scope["state"].update(
                    wrote_recently=True, write_noted=True, noted_at=wrote.noted_at
                )
        return results

    async def _counted(
        self, answered: _Answered, index: int, executed: Awaitable[ExecutionResult]
    ) -> ExecutionResult:
        """A batch's operation's answer, counted toward the request's size bound as soon as it
        is made; one made after another passed the bound is not counted, being withheld."""
        result = await executed
        if answered.passing is not None:
            answered.after.add(index)
            return result
        answered.size += len(orjson.dumps(result.data))
        if result.errors:
            answered.size += len(orjson.dumps([error.formatted for error in result.errors]))
        if answered.size > self.max_response_bytes:
            answered.passing = index
        return result

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Settles the answers and their status (sinergi.graphql_http) in the media type the
        request negotiated, and notes the error codes for metrics and logs; an outage answers
        503 with Retry-After, so clients and load balancers retry, unless an operation of the
        request committed a change before it: that answer keeps its data (`settled`).

        A batch whose answers passed the response size bound is refused with 400 as a query
        over it is when it changed nothing; one that holds a mutation answers 200, each
        operation with its answer or, from the one that passed the bound on, the bound's error
        in its place (`_past_bound`)."""
        answered = _ANSWERED.get()
        answers = (
            [self._settled(answer, answered, index) for index, answer in enumerate(response_data)]
            if isinstance(response_data, list)
            else self._settled(response_data, answered, 0)
        )
        if isinstance(answers, list) and answered is not None and answered.passing is not None:
            if not any(answered.mutations):
                return self._too_large(answered.size, sub_response.media_type)
            answers = self._past_bound(answered, answers)
        every: list[Any] = answers if isinstance(answers, list) else [answers]
        now = exchange.current()
        if now is not None:
            now.codes.extend(
                str((error.get("extensions") or {}).get("code"))
                for answer in every
                for error in answer.get("errors") or []
            )
        media_type = MediaType(sub_response.media_type or MediaType.JSON)
        changed = answered is not None and answered.any_in_doubt()
        sub_response.status_code = status(answers, media_type, changed=changed)
        if sub_response.status_code == 503:
            sub_response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return self._bounded(super().create_response(answers, sub_response), answers)

    @staticmethod
    def _settled(
        answer: GraphQLHTTPResponse, answered: _Answered | None, index: int
    ) -> GraphQLHTTPResponse:
        if answered is None:
            return settled(answer)
        return settled(
            answer, changed=answered.changed(index), commit_lost=answered.commit_lost(index)
        )

    def _past_bound(
        self, answered: _Answered, answers: list[GraphQLHTTPResponse]
    ) -> list[GraphQLHTTPResponse]:
        """A batch's answers once one passed the size bound: those made before it are kept; in
        place of the one that passed it and those after, the bound's error, which for a
        mutation (run to the end, committed) says what it applied."""
        kept: list[GraphQLHTTPResponse] = []
        for index, answer in enumerate(answers):
            if index != answered.passing and index not in answered.after:
                kept.append(answer)
            elif answered.mutations[index]:
                kept.append(self._withheld(answer, answered.size, answered.may_have_applied(index)))
            else:
                unanswered = index != answered.passing
                kept.append({"errors": [self._over_bound(answered.size, unanswered=unanswered)]})
        return kept

    def _bounded(
        self, response: Response, answers: GraphQLHTTPResponse | list[GraphQLHTTPResponse]
    ) -> Response:
        """The response, or QUERY_TOO_COMPLEX when its body is over the size bound: the last
        stop for what the cost estimate let through. The answer of a mutation that ran is
        withheld in a 200 saying whether it applied a change (its work is done, but no client
        needs megabytes back from one): a 400 would tell the client that nothing ran. A batch
        holding a mutation was bounded answer by answer (`_counted`): its body is over by its
        envelopes at most."""
        size = len(response.body)
        if size <= self.max_response_bytes:
            return response
        answered = _ANSWERED.get()
        if isinstance(answers, list):
            if answered is not None and any(answered.mutations):
                return response
        elif (
            answered is not None
            and isinstance(answered.operations, dict)
            and is_mutation(answered.operations, self.max_tokens)
            and "data" in answers  # it ran (sinergi.graphql_http's `settled`)
        ):
            body = orjson.dumps(self._withheld(answers, size, answered.may_have_applied(0)))
            return Response(body, 200, media_type=response.media_type)
        return self._too_large(size, response.media_type)

    def _withheld(
        self, answer: GraphQLHTTPResponse, size: int, applied: bool
    ) -> GraphQLHTTPResponse:
        """A mutation's answer over the size bound: its data withheld, whether it `applied` a
        change said."""
        error = self._over_bound(size, applied=applied)
        now = exchange.current()
        if now is not None:
            now.codes.append("QUERY_TOO_COMPLEX")
        return withheld(answer, error)

    def _too_large(self, size: int, media_type: str | None) -> Response:
        now = exchange.current()
        if now is not None:
            now.codes.append("QUERY_TOO_COMPLEX")
        error = self._over_bound(size)
        return Response(orjson.dumps({"errors": [error]}), 400, media_type=media_type)

    def _over_bound(
        self, size: int, *, applied: bool | None = None, unanswered: bool = False
    ) -> dict[str, Any]:
        """QUERY_TOO_COMPLEX naming the response size bound and the size that passed it.
        `applied`, in place of a mutation's answer: whether its change was committed, or may have
        been (`_Answered.may_have_applied`), which the client then reads back rather than send
        it again (`extensions.applied`). `unanswered`: in place of a batch's query that came
        after the bound was passed."""
        violation = Violation("response size", self.max_response_bytes, size)
        extensions: dict[str, Any] = {
            "code": "QUERY_TOO_COMPLEX",
            "limit": violation.limit,
            "maximum": violation.maximum,
            "actual": violation.actual,
        }
        message = violation.message
        if applied is not None:
            extensions["applied"] = applied
        if applied:
            message = (
                f"the change was applied and its answer withheld: {message}; "
                "read what it changed back rather than send it again"
            )
        elif applied is False:
            message = f"the change was not applied, and its answer withheld: {message}"
        elif unanswered:
            message = f"not answered: the batch's answers before it passed the bound: {message}"
        return {"message": message, "extensions": extensions}

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
        """The operations the guard decoded, whatever the method: for a GET, sinergi.http_edge
        decoded the URL's parameters. The request guard has checked their shape."""
        assert isinstance(request, _RequestAdapter)
        decoded = payload(request.scope)
        operations = [
            GraphQLRequestData(
                query=operation.get("query"),
                variables=operation.get("variables"),
                operation_name=operation.get("operationName"),
                extensions=operation.get("extensions"),
            )
            for operation in (decoded if isinstance(decoded, list) else [decoded])
        ]
        return operations if isinstance(decoded, list) else operations[0]

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
        index: int = 0,
    ) -> ExecutionResult:
        """Each operation runs with a context of its own: Strawberry runs a batch's operations
        at once with the request's one context, whose notes of records and data subjects would
        then mix in their audit entries. `index`: the operation's place in a batch, where its
        context is kept for what it changed (`_Answered`)."""
        own = self._context(request)
        answered = _ANSWERED.get()
        if answered is not None:
            answered.contexts[index] = own
        return await super().execute_single(
            request, request_adapter, sub_response, own, root_value, request_data
        )

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Never here: sinergi.http_edge serves GraphiQL (sinergi.graphiql), to browsers only."""
        return False

    async def get_context(self, request: Any, response: Any) -> Context:
        if isinstance(request, WebSocket):
            return subscriptions.context_for(request, self.limits)
        return self._context(request)

    async def on_ws_connect(self, context: Context) -> None:
        """A WebSocket is acknowledged only with a token the HTTP endpoint would accept."""
        assert isinstance(context.request, WebSocket)
        await subscriptions.admit(context, context.request, self.rate_limiter, self.sockets)

    def _context(self, request: Any) -> Context:
        state = request.scope["state"]
        return context_for(
            request,
            request.user.principal,
            self.limits,
            wrote_recently=state["wrote_recently"],
            write_noted=state["write_noted"],
            noted_at=state["noted_at"],
            window_seconds=self.fresh_seconds,
        )
