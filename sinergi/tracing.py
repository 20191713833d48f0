"""Optional OpenTelemetry tracing: a span for each HTTP request and, beneath it, one for each SQL
statement, exported over OTLP/HTTP to a collector (Jaeger, Tempo, an OpenTelemetry Collector).

Off unless an endpoint is configured; then nothing is instrumented, so it costs nothing. The
exporter also honours OpenTelemetry's standard `OTEL_EXPORTER_OTLP_*` variables for headers,
timeout and compression.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from db.errors import loggable

UNTRACED_PATHS = "/healthz,/readyz,/metrics"
"""Probes and scrapes: frequent, uninteresting, and they would drown the requests."""


def provider_for(endpoint: str | None, service_name: str) -> TracerProvider | None:
    """Spans batched and sent to `endpoint`/v1/traces; None when no endpoint is configured."""
    if not endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(_StatementErrorsTold(BatchSpanProcessor(exporter)))
    return provider


_statement_error: ContextVar[str | None] = ContextVar("sinergi_statement_error", default=None)
"""The last failed statement's error as the log tells it, set before the instrumentation ends
that statement's span."""


def _tell_statement_error(context: ExceptionContext) -> None:
    """Runs ahead of the instrumentation's own `handle_error`, which ends the span with the
    exception's whole text as its status: a value the statement was refused may end it (22P02's
    `"…"`, asyncpg's `query argument $1: '…'`), personal data sent to the collector."""
    error = context.original_exception
    _statement_error.set(loggable(error) or type(error).__name__)


class _StatementErrorsTold(SpanProcessor):
    """Hands `exporting` each failed statement's span with its status told as the log tells
    the error (db.errors.loggable), in place of the instrumentation's text of it. An ended span
    cannot be changed, so a copy goes on."""

    def __init__(self, exporting: SpanProcessor) -> None:
        self.exporting = exporting

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.exporting.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if (
            scope is not None
            and scope.name == SQLAlchemyInstrumentor.__module__  # the tracer's name
            and span.status.status_code is StatusCode.ERROR
        ):
            span = ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=span.attributes,
                events=span.events,
                links=span.links,
                kind=span.kind,
                status=Status(StatusCode.ERROR, _statement_error.get()),
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=scope,
            )
        self.exporting.on_end(span)

    def shutdown(self) -> None:
        self.exporting.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporting.force_flush(timeout_millis)


_WITHHELD = "sinergi.query_string"
"""Where a request's query string waits, in its scope, while the span is opened without it."""


class _QueryStringWithheld:
    """The ASGI instrumentation with the request's query string out of its sight.

    The instrumentation records the full URL (`http.url`, and `url.query` under the stable
    conventions), and a query string holds a GraphQL GET's variables (NIKs among them) or a
    secret a client put in the URL: the spans would export them to the collector, which the
    access log leaves out on purpose. A hook cannot take an attribute back once the span has
    it, so the instrumentation is shown a scope without the query string, and the app inside
    it gets the query string back."""

    def __init__(self, app: ASGIApp, provider: TracerProvider) -> None:
        self.traced = OpenTelemetryMiddleware(
            _query_string_restored(app), tracer_provider=provider, excluded_urls=UNTRACED_PATHS
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "query_string": b"", _WITHHELD: scope.get("query_string", b"")}
        await self.traced(scope, receive, send)


def _query_string_restored(app: ASGIApp) -> ASGIApp:
    async def restored(scope: Scope, receive: Receive, send: Send) -> None:
        # In place: the instrumentation reads the route the router records in this scope.
        if _WITHHELD in scope:
            scope["query_string"] = scope.pop(_WITHHELD)
        await app(scope, receive, send)

    return restored


def middleware(provider: TracerProvider) -> Middleware:
    """The outermost middleware, so a request's span covers everything the server does for it."""
    return Middleware(_QueryStringWithheld, provider=provider)


@contextmanager
def statements_traced(provider: TracerProvider, engines: Sequence[AsyncEngine]) -> Iterator[None]:
    """SQL spans from `engines` while the app runs; the remaining spans are flushed at the end."""
    # Listened for before the instrumentation is, so that it runs first: a dialect's events
    # run in the order they were listened for (`insert` does not apply to them).
    for engine in engines:
        event.listen(engine.sync_engine, "handle_error", _tell_statement_error)
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument(
        engines=[engine.sync_engine for engine in engines],
        tracer_provider=provider,
        # The instrumentation declares SQLAlchemy < 2.1 although the engine events it listens
        # to are unchanged in 2.1; tests/test_tracing.py checks that the statements are traced.
        skip_dep_check=True,
    )
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "handle_error", _tell_statement_error)
        instrumentor.uninstrument()
        provider.shutdown()
