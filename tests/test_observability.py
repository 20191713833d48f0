"""`/metrics`, request ids and JSON logs, through the real app over HTTP."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from db.errors import is_unavailable
from sinergi.app import create_app
from sinergi.logs import (
    FLUSH_SECONDS,
    MAX_PENDING,
    BatchedStreamHandler,
    JsonFormatter,
    TextFormatter,
    lean_records,
    log_config,
)
from sinergi.settings import Environment, Settings, SettingsError
from tests.support.access_log import captured
from tests.support.databases import as_service
from tests.support.http import LOOPBACK_PEER, Api

READ = "query FirstMsmes { msmes(first: 2) { nodes { nib } } }"
FORBIDDEN = 'query Participants { programme(id: "PR-MBG") { id participants { msme { nib } } } }'

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_refused_websocket_is_counted_as_a_refused_request_is(api: Api) -> None:
    """A socket has no HTTP status to count its refusal under: it is counted under "ws"."""
    before = _scrape(api.client)
    for payload in ({}, {"Authorization": "Bearer not.a.token"}):
        with api.client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"]
        ) as socket:
            socket.send_json({"type": "connection_init", "payload": payload})
            assert socket.receive()["code"] == 4403
    after = _scrape(api.client)
    counted = {"code": "UNAUTHENTICATED", "status": "ws"}
    assert _value(after, "sinergi_errors_total", **counted) == (
        _value(before, "sinergi_errors_total", **counted) + 2
    )


@pytest.fixture(scope="module")
def strict_api(demo_url: str, api: Api) -> Iterator[Api]:
    """The app again, with a rate limit of two requests a minute (the `api` fixture registered
    the demo clients; rate-limit counts live in the database, per client)."""
    with TestClient(
        create_app(Settings(rate_limit=2), database_url=as_service(demo_url))
    ) as client:
        yield Api(client)


def test_a_get_query_is_counted_as_a_graphql_request_and_the_graphiql_page_is_not(
    demo_url: str, api: Api
) -> None:
    """A GET runs a query as a POST does, so it is counted with the GraphQL requests (only
    POSTs were); a browser's GET of GraphiQL's page in development runs none, and is not."""
    before = _scrape(api.client)
    headers = {"Authorization": f"Bearer {api.token('demo-province-62')}"}
    got = api.client.get("/graphql", params={"query": READ}, headers=headers)
    assert got.status_code == 200, got.text
    development = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    app = create_app(development, database_url=as_service(demo_url))
    with TestClient(app, base_url="http://127.0.0.1:18502", client=LOOPBACK_PEER) as local:
        page = local.get("/graphql", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    after = _scrape(api.client)
    by_client = {"operation": "FirstMsmes", "client_id": "demo-province-62", "status": "200"}
    anonymous = {"operation": "(anonymous)", "client_id": "anonymous", "status": "200"}
    for labels, counted in ((by_client, 1), (anonymous, 0)):
        grew = _value(after, "sinergi_graphql_requests_total", **labels) - _value(
            before, "sinergi_graphql_requests_total", **labels
        )
        assert grew == counted, labels


def test_metrics_count_requests_errors_and_rejections(api: Api, strict_api: Api) -> None:
    before = _scrape(api.client)
    token = api.token("demo-province-62")
    assert api.post({"query": READ}, token).status_code == 200
    assert api.post({"query": READ}, token).status_code == 200
    assert api.post({"query": READ}, None).status_code == 401
    forbidden = api.post({"query": FORBIDDEN}, api.token("demo-ministry")).json()
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    too_many = [{"query": "{ __typename }"}] * (Settings().query_limits.max_batch + 1)
    assert api.post(too_many, token).status_code == 400
    limited = strict_api.token("demo-regency-6271")
    # A process may admit its allowance (1) beyond the limit (2) (sinergi/rate_limit.py): the
    # fourth request is refused at the latest; earlier tests may have used up the minute.
    statuses = [strict_api.post({"query": READ}, limited).status_code for _ in range(4)]
    rejected = statuses.count(429)
    assert rejected >= 1

    after = _scrape(api.client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    by_client = {"operation": "FirstMsmes", "client_id": "demo-province-62"}
    assert grew("sinergi_graphql_requests_total", status="200", **by_client) == 2
    assert grew("sinergi_graphql_request_duration_seconds_count", **by_client) == 2
    assert grew("sinergi_graphql_request_duration_seconds_bucket", le="+Inf", **by_client) == 2
    assert _value(after, "sinergi_graphql_request_duration_seconds_sum", **by_client) > 0
    assert grew("sinergi_errors_total", code="UNAUTHENTICATED", status="401") == 1
    assert grew("sinergi_errors_total", code="FORBIDDEN", status="200") == 1
    assert grew("sinergi_errors_total", code="QUERY_TOO_COMPLEX", status="400") == 1
    assert grew("sinergi_errors_total", code="RATE_LIMITED", status="429") == rejected
    assert grew("sinergi_rate_limit_rejections_total", client_id="demo-regency-6271") == rejected
    assert (
        grew(
            "sinergi_graphql_requests_total",
            operation="Participants",
            client_id="demo-ministry",
            status="200",
        )
        == 1
    )
    assert grew("sinergi_http_requests_total", method="POST", route="/graphql", status="401") == 1
    pool_size = Settings().db_pool_size
    assert _value(after, "sinergi_db_pool_size", database="primary") == pool_size
    assert 0 <= _value(after, "sinergi_db_pool_checked_out", database="primary") <= pool_size
    assert _value(after, "sinergi_db_pool_size", database="replica") == 0  # none configured


def test_metrics_can_require_a_token(demo_url: str) -> None:
    settings = Settings(metrics_token="scrape-me-please-now")
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please-now"})
        assert allowed.status_code == 200
        assert "sinergi_http_requests_total" in allowed.text


def _worker(metrics_dir: Path, pool_size: int) -> subprocess.Popen[str]:
    """A process writing its pool gauge to `metrics_dir`, as a worker of `serve --workers`
    does, until its stdin closes."""
    code = (
        "import sys; from sinergi import metrics;"
        f" metrics.POOL_SIZE.labels('primary').set({pool_size}); print(flush=True);"
        " sys.stdin.read()"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    worker.stdout.readline()  # the gauge is written
    return worker


def test_a_killed_workers_pool_gauges_leave_the_sums(demo_url: str, tmp_path: Path) -> None:
    """A worker killed with SIGKILL (or by the OOM killer) never marks itself dead: uvicorn
    starts another, and the dead one's pool gauges stayed in the sums for as long as `serve`
    ran. A scrape leaves out the gauges of processes that are gone."""
    killed, alive = _worker(tmp_path, 7), _worker(tmp_path, 3)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        settings = Settings(metrics_open=True, metrics_dir=str(tmp_path))
        with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
            assert _value(_scrape(client), "sinergi_db_pool_size", database="primary") == 3
    finally:
        for worker in (killed, alive):
            worker.communicate()


def test_production_metrics_are_404_unless_a_token_or_an_explicit_opt_in_opens_them(
    api: Api, demo_url: str
) -> None:
    """The series name every active client and what it runs: production hands them to nobody
    by default, as for a path that does not exist, while development stays open."""
    assert "sinergi_graphql_requests_total" in api.client.get("/metrics").text  # opted in
    home = {"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]}  # the tests' audit key, not the user's
    cases = {
        Settings.from_env(home): 404,
        Settings.from_env({**home, "SINERGI_METRICS": "open"}): 200,
        Settings.from_env({**home, "SINERGI_METRICS_TOKEN": "scrape-me-please-now"}): 401,
        Settings.from_env({**home, "SINERGI_ENV": "development"}): 200,
    }
    for settings, status in cases.items():
        with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
            response = client.get("/metrics")
            assert response.status_code == status, (settings.metrics_access, response.text)
            if status == 404:
                assert response.text == client.get("/no-such-path").text
                assert "demo-province-62" not in response.text
    with pytest.raises(SettingsError, match="SINERGI_METRICS=open and SINERGI_METRICS_TOKEN"):
        Settings.from_env(
            {"SINERGI_METRICS": "open", "SINERGI_METRICS_TOKEN": "scrape-me-please-now"}
        )


def test_a_metrics_token_anyone_could_guess_is_refused_at_start() -> None:
    """The token guards series naming every active client: one of a few characters would be
    guessed by whoever reaches /metrics."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"SINERGI_METRICS_TOKEN": "x" * 15})
    assert str(refused.value) == "SINERGI_METRICS_TOKEN must be at least 16 characters, got 15"
    assert Settings.from_env({"SINERGI_METRICS_TOKEN": "x" * 16}).metrics_token == "x" * 16


def test_request_id_is_kept_or_generated_and_returned(api: Api) -> None:
    kept = api.client.get("/healthz", headers={"X-Request-ID": "ministry-42.a"})
    assert kept.headers["x-request-id"] == "ministry-42.a"
    generated = api.client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert set(generated) <= set("0123456789abcdef"), generated
    for hostile in ('x" injected="1', "x" * 129):
        replaced = api.client.get("/healthz", headers={"X-Request-ID": hostile})
        assert len(replaced.headers["x-request-id"]) == 32


def test_access_log_is_one_json_object_per_line_with_the_request_id(api: Api) -> None:
    token = api.token("demo-province-62")  # before listening: a first token is a request too
    with captured() as stream:
        response = api.client.post(
            "/graphql",
            json={"query": READ},
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-123"},
        )
    assert response.status_code == 200
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == "trace-123"
    assert line["logger"] == "sinergi.access"
    assert line["level"] == "info"
    assert line["message"] == "POST /graphql 200"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/graphql", 200)
    assert (line["client_id"], line["operation"]) == ("demo-province-62", "FirstMsmes")
    assert line["duration_ms"] > 0
    assert line["time"].endswith("+00:00")


def test_a_path_cannot_forge_access_log_lines(api: Api) -> None:
    """The path is logged as the client percent-encoded it: decoded, a CR LF in it would start
    a forged line in the text log, and an escape sequence would drive the terminal."""
    text_format = log_config(Settings(log_format="text"))["formatters"]["default"]["format"]
    forged = "/x%0d%0a2026-01-01 00:00:00,000 INFO sinergi.access: GET /graphql 200%1b[2J"
    for formatter in (TextFormatter(text_format), JsonFormatter()):
        with captured(formatter) as stream:
            assert api.client.get(forged).status_code == 404
        written = stream.getvalue()
        (line,) = written.splitlines()
        assert not any(ord(character) < 0x20 for character in line), line
        assert "%0D%0A" in line.upper(), line
        assert "%1B" in line.upper(), line
    assert json.loads(line)["path"].startswith("/x%0D%0A2026-01-01%2000:00:00,000%20INFO"), line


def test_json_formatter_keeps_exceptions_and_has_no_request_id_outside_requests() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("sinergi.test").makeRecord(
            "sinergi.test", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed x"
    assert entry["request_id"] is None
    assert "RuntimeError: boom" in entry["exception"]


def test_database_outages_are_told_apart_from_other_errors() -> None:
    from sqlalchemy import exc

    refused = exc.OperationalError("connect", {}, ConnectionRefusedError(111, "refused"))
    assert is_unavailable(refused)
    assert is_unavailable(exc.TimeoutError("QueuePool limit reached"))
    assert not is_unavailable(exc.ProgrammingError("SELECT", {}, ValueError("syntax")))
    assert not is_unavailable(ValueError("bad input"))


@pytest.mark.parametrize(
    "refusal",
    [
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),  # 53300
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),  # 57P03
    ],
    ids=lambda refusal: refusal.sqlstate,
)
def test_a_server_refusing_connections_is_an_outage(refusal: Exception) -> None:
    """A server at its connection limit answered every request 500 INTERNAL: it is an outage,
    503 and retry, as a server starting up is."""
    from sqlalchemy import exc

    assert is_unavailable(exc.OperationalError("connect", {}, refusal))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SINERGI_LOG_FORMAT", "xml"),
        ("SINERGI_LOG_LEVEL", "loud"),
        ("SINERGI_SHUTDOWN_GRACE", "0"),
        ("SINERGI_METRICS", "yes"),
    ],
)
def test_bad_operational_settings_fail_at_start(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


class _Unbuffered(io.StringIO):
    """Counts writes: stdout under PYTHONUNBUFFERED, where each write is a system call."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_log_lines_are_written_in_batches_warnings_at_once() -> None:
    stream = _Unbuffered()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sinergi.test-batched")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for n in range(50):
            logger.info("access line %d", n)
        assert stream.writes == 0
        logger.warning("something to see now")
        assert stream.writes == 1
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["message"] for line in lines] == [
            *(f"access line {n}" for n in range(50)),
            "something to see now",
        ]
        logger.info("a last line")
        time.sleep(3 * FLUSH_SECONDS)  # nothing follows it: the handler's thread writes it
        assert stream.writes == 2
        assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "a last line"
        for n in range(MAX_PENDING):
            logger.info("a burst %d", n)
        assert stream.writes == 3  # a full batch goes at once: memory stays bounded
    finally:
        logger.removeHandler(handler)


def test_the_flushing_thread_ends_quietly_once_its_stream_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stream closed under the handler (stdout at the interpreter's exit, a test runner's
    capture ended): its thread stops rather than dies with a traceback on stderr, as it did at
    the end of every CI run."""
    died: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    stream = io.StringIO()
    handler = BatchedStreamHandler(stream)
    logger = logging.getLogger("sinergi.test-closed-stream")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    before = set(threading.enumerate())
    try:
        logger.info("a line its thread would flush")
        (flushing,) = set(threading.enumerate()) - before
        stream.close()
        flushing.join(timeout=10 * FLUSH_SECONDS)
        assert not flushing.is_alive()
        assert died == []
    finally:
        logger.removeHandler(handler)


def test_lean_records_look_up_nothing_no_line_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    for switch in ("logProcesses", "logThreads", "logMultiprocessing", "logAsyncioTasks"):
        if hasattr(logging, switch):  # logAsyncioTasks: Python 3.12 and later
            monkeypatch.setattr(logging, switch, True)
    lean_records()

    async def made_in_a_task() -> logging.LogRecord:
        return logging.getLogger("sinergi.test").makeRecord(
            "sinergi.test", logging.INFO, __file__, 1, "a line", (), None
        )

    record = asyncio.run(made_in_a_task())
    assert (record.process, record.thread, record.processName) == (None, None, None)
    assert getattr(record, "taskName", None) is None
    assert JsonFormatter().format(record)  # every line still formats


def test_debug_logs_leave_out_what_websockets_logs_of_each_frame() -> None:
    """At debug the websockets library logs the handshake's headers and every frame, through
    the logger uvicorn hands it (uvicorn.error): a connection_init with its bearer token, the
    change feed's pages of records. Those lines stay out; uvicorn's own debug lines do not."""
    token = "eyJhbGciOi.secret-payload.secret-signature"
    init = json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    served = logging.getLogger("uvicorn.error")
    kept: list[logging.LogRecord] = []
    with logging_configured(log_config(Settings(log_level="debug"))):
        collecting = logging.Handler()
        collecting.emit = kept.append  # type: ignore[method-assign]
        served.addHandler(collecting)
        served.debug("uvicorn's own debug line")
        protocol = ServerProtocol(logger=served)
        protocol.receive_data(
            b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        (request,) = protocol.events_received()
        protocol.send_response(protocol.accept(request))
        protocol.receive_data(Frame(Opcode.TEXT, init.encode()).serialize(mask=True))
        assert protocol.events_received()  # the frame was read, and would have been logged
    debug = [record.getMessage() for record in kept if record.levelno < logging.INFO]
    assert debug == ["uvicorn's own debug line"]
    assert not any("secret" in record.getMessage() for record in kept)


@contextmanager
def logging_configured(config: dict[str, Any]) -> Iterator[None]:
    """Applies a `dictConfig` for one test, then puts back every logger it names as it was
    (handlers, filters, level, propagation) and closes the handlers it made, so that later
    tests log as the suite configured them and no batched line prints at the run's end."""
    loggers = [logging.getLogger(), *map(logging.getLogger, config.get("loggers", {}))]
    saved = [(lg.handlers[:], lg.filters[:], lg.level, lg.propagate) for lg in loggers]
    try:
        logging.config.dictConfig(config)
        yield
    finally:
        for lg, (handlers, filters, level, propagate) in zip(loggers, saved, strict=True):
            for made in set(lg.handlers) - set(handlers):
                made.close()
            lg.handlers[:], lg.filters[:] = handlers, filters
            lg.setLevel(level)
            lg.propagate = propagate
