"""OpenTelemetry tracing: a span per request, the SQL statements beneath it, sent over OTLP."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import Date, bindparam, cast, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from db.engine import async_url
from sinergi.app import create_app
from sinergi.settings import Settings
from sinergi.tracing import provider_for, statements_traced
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.http import Api

PAGE = '{ msmes(first: 3, filter: {region: "62"}) { nodes { nib regency { name } } } }'


@pytest.fixture(scope="module")
def clients_registered(demo_url: str) -> str:
    demo_clients(demo_url)
    return demo_url


def _serve_one_page(app_url: str, settings: Settings, provider: TracerProvider | None) -> None:
    app = create_app(settings, database_url=as_service(app_url), tracer_provider=provider)
    with TestClient(app) as client:
        api = Api(client)
        answer = api.graphql(PAGE, "demo-province-62")
        assert len(answer["data"]["msmes"]["nodes"]) == 3
        assert client.get("/healthz").status_code == 200


def test_a_request_span_holds_its_sql_statements(clients_registered: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _serve_one_page(clients_registered, Settings(rate_limit=1_000_000), provider)

    spans: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    requests = [span for span in spans if span.kind is SpanKind.SERVER]
    graphql = [span for span in requests if span.name == "POST /graphql"]
    # The token request and the page; /healthz is not traced.
    assert sorted(span.name for span in requests) == ["POST /graphql", "POST /oauth/token"]
    page_trace = graphql[0].context.trace_id
    statements = [
        str((span.attributes or {}).get("db.statement", ""))
        for span in spans
        if span.kind is SpanKind.CLIENT and span.context.trace_id == page_trace
    ]
    assert any("FROM msmes" in statement for statement in statements)
    assert any("INSERT INTO audit_log" in statement for statement in statements)


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps what it is sent."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Collector.received = []
    yield f"http://127.0.0.1:{server.server_port}", _Collector.received
    server.shutdown()


def test_spans_reach_an_otlp_collector_named_by_the_environment(
    clients_registered: str, collector: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    endpoint, received = collector
    settings = Settings.from_env(
        {
            "DATABASE_URL": clients_registered,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "sinergi-test",
            "SINERGI_RATE_LIMIT": "1000000",
            # The session's home (tests/conftest.py): its audit key seals the shared demo
            # trail, as every other app of the session does, and the home of whoever runs
            # the tests is left alone.
            "XDG_DATA_HOME": os.environ["XDG_DATA_HOME"],
        }
    )
    _serve_one_page(clients_registered, settings, None)  # stopping the app flushes the spans

    assert received, "the collector got nothing"
    assert {(path, kind) for path, kind, _ in received} == {
        ("/v1/traces", "application/x-protobuf")
    }
    exported = [ExportTraceServiceRequest.FromString(body) for _, _, body in received]
    services = {
        attribute.value.string_value
        for request in exported
        for resource_spans in request.resource_spans
        for attribute in resource_spans.resource.attributes
        if attribute.key == "service.name"
    }
    names = {
        span.name
        for request in exported
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    assert services == {"sinergi-test"}
    assert "POST /graphql" in names


def test_without_an_endpoint_nothing_is_traced() -> None:
    assert Settings.from_env({}).otlp_endpoint is None
    app = create_app(Settings(), database_url="postgresql://unused/sinergi")
    assert not any("OpenTelemetry" in str(layer.cls) for layer in app.user_middleware)


def test_no_span_carries_a_query_string(clients_registered: str) -> None:
    """A GraphQL GET's variables (a NIK) and a secret sent in a token request's query string
    stay out of the spans, as they stay out of the access log."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    nik, secret = "3201234567890123", "a-secret-in-the-url"
    app = create_app(
        Settings(rate_limit=1_000_000),
        database_url=as_service(clients_registered),
        tracer_provider=provider,
    )
    with TestClient(app) as client:
        api = Api(client)
        headers = {"Authorization": f"Bearer {api.token('demo-province-62')}"}
        query = "query ($nik: String!) { personalDataAccess(nik: $nik) { clientId } }"
        params = {"query": query, "variables": f'{{"nik": "{nik}"}}'}
        answer = client.get("/graphql", params=params, headers=headers).json()
        # The app still read the query string: the operation ran, and was refused its scope.
        assert answer["errors"][0]["path"] == ["personalDataAccess"], answer
        client.post(f"/oauth/token?client_secret={secret}", data={"grant_type": "x"})

    requests = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]
    assert sorted(span.name for span in requests) == [
        "GET /graphql",
        "POST /oauth/token",
        "POST /oauth/token",
    ]
    for span in requests:
        for key, value in (span.attributes or {}).items():
            assert "?" not in str(value), (key, value)
            assert nik not in str(value), (key, value)
            assert secret not in str(value), (key, value)
            assert key != "url.query", (key, value)


def test_a_failed_statement_s_span_tells_its_error_without_the_value(
    demo_url: str, collector: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    """The instrumentation gives a failed statement's span the exception's own text, which may
    end with the value refused: a NIK bound where a date belongs, quoted by asyncpg before it
    sends the statement or by PostgreSQL after. The span says what the log would."""
    endpoint, received = collector
    nik = "6271015505900001"
    provider = provider_for(endpoint, "sinergi-test")
    assert provider is not None
    engine = create_async_engine(async_url(demo_url))
    refused = [
        select(cast(bindparam("born", nik, type_=Date), Date)),  # asyncpg's
        text("SELECT CAST(CAST(:born AS text) AS date)").bindparams(born=nik),  # PostgreSQL's
    ]

    async def fail() -> None:
        for statement in refused:
            async with engine.connect() as connection:
                with pytest.raises(DBAPIError):
                    await connection.execute(statement)
        await engine.dispose()

    with statements_traced(provider, [engine]):
        asyncio.run(fail())

    statuses = [
        span.status
        for body in (body for _, _, body in received)
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
        if span.status.message
    ]
    assert len(statuses) == len(refused), statuses
    for status in statuses:
        assert nik not in status.message, status.message
    assert sorted(status.message for status in statuses) == [
        "[SQLSTATE 22000] invalid input for query argument $1: …",
        '[SQLSTATE 22008] date/time field value out of range: "…"',
    ]
