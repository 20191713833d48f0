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


def middleware(provider: TracerProvider) -> Middleware:
    """The outermost middleware, so a request's span covers everything the server does for it."""
    return Middleware(
        OpenTelemetryMiddleware, tracer_provider=provider, excluded_urls=UNTRACED_PATHS
    )


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
