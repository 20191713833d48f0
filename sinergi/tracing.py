"""Optional OpenTelemetry tracing: a span for each HTTP request and, beneath it, one for each SQL
statement, exported over OTLP/HTTP to a collector (Jaeger, Tempo, an OpenTelemetry Collector).

Off unless an endpoint is configured; then nothing is instrumented, so it costs nothing. The
exporter also honours OpenTelemetry's standard `OTEL_EXPORTER_OTLP_*` variables for headers,
timeout and compression.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

UNTRACED_PATHS = "/healthz,/readyz,/metrics"
"""Probes and scrapes: frequent, uninteresting, and they would drown the requests."""


def provider_for(endpoint: str | None, service_name: str) -> TracerProvider | None:
    """Spans batched and sent to `endpoint`/v1/traces; None when no endpoint is configured."""
    if not endpoint:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


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
        instrumentor.uninstrument()
        provider.shutdown()
