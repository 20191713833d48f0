"""Prometheus metrics: what operations teams scrape from `GET /metrics`.

`prometheus_client` keeps the series and writes the text exposition format. With several worker
processes, `sinergi serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh directory before any
worker starts: each worker then writes its samples to memory-mapped files there, and whichever
worker answers a scrape adds up all of them (counters and histograms summed, pool gauges summed
over live workers: a scrape deletes those of a worker that is gone). Without that variable (one
worker, tests) the series live in this process only, where a sample is an addition in memory
rather than a locked write to a file.

Labels stay bounded: routes are the app's own paths, clients are registered ones (or an external
issuer's principals), and operation names (chosen by callers) are capped per client and process,
the surplus counted as "(other)".
"""

from __future__ import annotations

import contextlib
import hmac
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.pool import QueuePool
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sinergi.exchange import BATCH, OPERATION_NAME, UNKNOWN

MAX_OPERATION_NAMES = 200
"""Distinct operation names a client's series hold in a process. Each client has its own: with
one set for all, a client sending 200 made-up names would have left every other client's new
operations "(other)" until the process restarted."""
MAX_NAMING_CLIENTS = 1_000
"""Clients whose names are kept: past them a new client's names are "(other)", so the sets'
memory stays bounded even where an external issuer has more principals than this."""
ANONYMOUS = "(anonymous)"
OTHER = UNKNOWN
_PLACEHOLDERS = frozenset({BATCH, OTHER})
WEBSOCKET = "ws"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "sinergi_http_requests_total",
    "HTTP requests by method, route and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "sinergi_http_request_duration_seconds",
    "Time from request to last response byte, by route.",
    ["route"],
    buckets=_LATENCY_BUCKETS,
)
GRAPHQL_REQUESTS = Counter(
    "sinergi_graphql_requests_total",
    "POST /graphql requests by operation name, client and HTTP status.",
    ["operation", "client_id", "status"],
)
GRAPHQL_LATENCY = Histogram(
    "sinergi_graphql_request_duration_seconds",
    "POST /graphql latency by operation name and client.",
    ["operation", "client_id"],
    buckets=_LATENCY_BUCKETS,
)
ERRORS = Counter(
    "sinergi_errors_total",
    "Errors sent, by contract code (extensions.code) and the response's HTTP status"
    " (ws: over a WebSocket).",
    ["code", "status"],
)
RATE_LIMITED = Counter(
    "sinergi_rate_limit_rejections_total",
    "Requests refused with RATE_LIMITED, by client.",
    ["client_id"],
)
POOL_CHECKED_OUT = Gauge(
    "sinergi_db_pool_checked_out",
    "Database connections in use (summed over live workers), by database (primary, replica).",
    ["database"],
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "sinergi_db_pool_size",
    "Database connections the pools may hold (summed), by database.",
    ["database"],
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Gauge(
    "sinergi_db_pool_overflow",
    "Pooled connections not opened yet, negated (0 once every pool is full), by database.",
    ["database"],
    multiprocess_mode="livesum",
)
REPLICA_LAG = Gauge(
    "sinergi_db_replica_lag_seconds",
    "How far behind the primary the read replica was at its latest check (the most any live"
    " worker saw; +Inf when it has replayed none of the primary's positions sampled lately)."
    " Past SINERGI_READ_YOUR_WRITES_SECONDS every read goes to the primary; 0 without a replica.",
    multiprocess_mode="livemax",
)
AUDIT_SEALED_AT = Gauge(
    "sinergi_audit_sealed_timestamp_seconds",
    "When a sealing round last sealed the trail through its newest entry. Further behind now"
    " than a few SINERGI_AUDIT_SEAL_SECONDS, the trail is not being sealed (the database away,"
    " or sealing stopped at an entry it could not vouch for).",
    multiprocess_mode="max",
)
AUDIT_SEALED_ENTRY = Gauge(
    "sinergi_audit_sealed_entry",
    "The newest audit entry sealed, which the latest checkpoint covers.",
    multiprocess_mode="max",
)
AUDIT_SEAL_REFUSALS = Counter(
    "sinergi_audit_seal_refusals_total",
    "Sealing rounds stopped at an entry whose hash or link is wrong, or that sealed past an entry"
    " that cannot be read, or found the entry they saw sealed before rewritten or removed: run"
    " sinergi audit verify.",
)
AUDIT_SEAL_STALLS = Counter(
    "sinergi_audit_seal_stalls_total",
    "Sealing rounds that found the sealing lock taken while an audit entry had waited longer than"
    " SINERGI_AUDIT_UNSEALED_INTERVALS x SINERGI_AUDIT_SEAL_SECONDS to be sealed: whoever holds"
    " the lock is not sealing, and unsealed entries can be removed unnoticed.",
)
AUDIT_SEAL_FAILURES = Counter(
    "sinergi_audit_seal_failures_total",
    "Sealing rounds that failed with the database there (a bug, or an entry or seal sealing"
    " cannot take): nothing was sealed; the error is logged (sinergi.audit).",
)
AUDIT_CHECKPOINT_FAILURES = Counter(
    "sinergi_audit_checkpoint_failures_total",
    "Checkpoints that could not be appended to the checkpoint file (SINERGI_AUDIT_CHECKPOINTS):"
    " sealing goes on, but nothing outside PostgreSQL vouches for the entries since.",
)
AUDIT_SYSLOG_FAILURES = Counter(
    "sinergi_audit_syslog_failures_total",
    "Checkpoints that could not be sent to syslog (SINERGI_AUDIT_SYSLOG); the file has them.",
)

_operation_names: dict[str, set[str]] = {}
"""Each client's labelled names."""
_children: dict[tuple[object, tuple[str, ...]], Any] = {}
POOL_SECONDS = 1.0
_pools_observed_at = -POOL_SECONDS


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, found again without prometheus_client's lock and checks: a
    request adds to five series, and label sets are bounded (see above)."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def operation_label(name: str | None, client: str) -> str:
    """The operation's name as a label of `client`'s series; unnamed ones are "(anonymous)",
    and names past the client's cap "(other)", so a caller inventing names cannot grow the
    series without end, nor use up another client's. The guard lets through only names its
    document holds, of bounded length (sinergi.exchange); anything else is "(other)" here too,
    so no label is ever a caller's megabyte."""
    if name is None:
        return ANONYMOUS
    if name in _PLACEHOLDERS:
        return name
    names = _operation_names.get(client)
    if names is not None and name in names:
        return name
    if not OPERATION_NAME.fullmatch(name):
        return OTHER
    if names is None:
        if len(_operation_names) >= MAX_NAMING_CLIENTS:
            return OTHER
        names = _operation_names[client] = set()
    if len(names) >= MAX_OPERATION_NAMES:
        return OTHER
    names.add(name)
    return name


def observe_pools(state: Mapping[str, Any]) -> None:
    """The pools of the app's lifespan state: the primary's and, if configured, the replica's;
    and a lag of 0 without a replica (a replica's checks set its own: observe_replica_lag). A
    database without a pool reads 0, so the gauges describe this app's pools, not those of an
    app the same process ran before (tests start many)."""
    replica = state.get("replica")
    for database, engine in (
        ("primary", state.get("engine")),
        ("replica", replica and replica.engine),
    ):
        pool = getattr(engine, "pool", None)
        checked_out, size, overflow = (
            (pool.checkedout(), pool.size(), pool.overflow())
            if isinstance(pool, QueuePool)
            else (0, 0, 0)
        )
        POOL_CHECKED_OUT.labels(database).set(checked_out)
        POOL_SIZE.labels(database).set(size)
        POOL_OVERFLOW.labels(database).set(overflow)
    if replica is None:  # with one, each of its checks sets the lag (observe_replica_lag)
        REPLICA_LAG.set(0.0)


def observe_replica_lag(lag: float | None) -> None:
    """The lag a check of the read replica found (db.reads.Replica), at each check, so that a
    worker serving no requests reports it current too; None, unknown, is +Inf."""
    REPLICA_LAG.set(math.inf if lag is None else lag)


def observe_request(
    *,
    method: str,
    route: str,
    status: int,
    seconds: float,
    operation: str | None,
    client_id: str | None,
    codes: list[str],
    state: Mapping[str, Any],
    graphiql: bool,
) -> None:
    """Everything one request adds to the series; a handful of in-memory increments. The pool
    gauges are read at most once a second (and at every scrape of this worker). A GraphQL
    request is a POST or a GET to /graphql (a GET runs queries as a POST does), unless the GET
    was answered GraphiQL's page (`graphiql`)."""
    global _pools_observed_at
    status_label = str(status)
    client = client_id or "anonymous"
    _child(HTTP_REQUESTS, method, route, status_label).inc()
    _child(HTTP_LATENCY, route).observe(seconds)
    if route == "/graphql" and method in ("GET", "POST") and not graphiql:
        label = operation_label(operation, client)
        _child(GRAPHQL_REQUESTS, label, client, status_label).inc()
        _child(GRAPHQL_LATENCY, label, client).observe(seconds)
    _count_errors(codes, status_label, client)
    now = time.monotonic()
    if now - _pools_observed_at >= POOL_SECONDS:
        _pools_observed_at = now
        observe_pools(state)


def _count_errors(codes: list[str], status: str, client: str) -> None:
    for code in codes:
        _child(ERRORS, code, status).inc()
    if "RATE_LIMITED" in codes:
        _child(RATE_LIMITED, client).inc()


def observe_websocket_refusal(code: str, client_id: str | None) -> None:
    """A WebSocket connection or subscribe message refused. It has no HTTP status (the
    connection was upgraded, or is closed with a code of its own), so it is counted with the
    errors under the status "ws": otherwise a client hammering the socket with refused
    messages would never show on the dashboards that watch refusals over HTTP."""
    _count_errors([code], WEBSOCKET, client_id or "anonymous")


def observe_sealing(head: int | None, *, refused: bool, stopped: bool) -> None:
    """A sealing round this process finished: the newest entry sealed, if any, whether it
    stopped at an entry it could not seal (`stopped`), or sealed past one that cannot be read
    or found the head it saw sealed rewritten (`refused`, any of them). The time moves only when
    the round sealed the whole trail: a round that stopped leaves it behind, so the alert on it
    fires."""
    if not stopped:
        AUDIT_SEALED_AT.set(time.time())
    if head is not None:
        AUDIT_SEALED_ENTRY.set(head)
    if refused:
        AUDIT_SEAL_REFUSALS.inc()


LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")
"""A worker's file of gauges summed over live workers: gauge_livesum_PID.db and the like."""


def _forget_dead_workers(multiprocess_dir: str) -> None:
    """Drop the live gauges of workers that are gone. A worker killed (SIGKILL, the OOM killer)
    never runs `worker_exiting`: uvicorn starts another, and the dead one's pool gauges would
    be summed for as long as `serve` runs."""
    for path in Path(multiprocess_dir).iterdir():
        match = LIVE_GAUGE_FILE.fullmatch(path.name)
        if match is None:
            continue
        pid = int(match[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            # Another worker's scrape may have dropped them first.
            with contextlib.suppress(FileNotFoundError):
                mark_dead = multiprocess.mark_process_dead
                mark_dead(pid, multiprocess_dir)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, as another user
            pass


def _exposition(multiprocess_dir: str | None) -> bytes:
    if multiprocess_dir is None:
        return generate_latest(REGISTRY)
    _forget_dead_workers(multiprocess_dir)
    registry = CollectorRegistry()
    collector = multiprocess.MultiProcessCollector
    collector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def metrics_route(*, token: str, multiprocess_dir: str | None) -> Route:
    """`GET /metrics`: open unless SINERGI_METRICS_TOKEN is set, then that bearer token only.
    Mounted only where the settings allow it (Settings.metrics_access): the series name every
    active client, which nobody outside may learn."""
    expected = f"Bearer {token}".encode()

    async def endpoint(request: Request) -> Response:
        if token:
            sent = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, expected):
                return JSONResponse(
                    {"error": "the metrics token is required"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="sinergi-metrics"'},
                )
        observe_pools(request.scope.get("state", {}))
        body = await run_in_threadpool(_exposition, multiprocess_dir)
        # The classic text format: every Prometheus version reads it; our names need no UTF-8.
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return Route("/metrics", endpoint, methods=["GET"])


def worker_exiting(multiprocess_dir: str | None) -> None:
    """Drop this worker's pool gauges from the sums; its counters stay counted."""
    if multiprocess_dir is not None:
        mark_dead = multiprocess.mark_process_dead
        mark_dead(os.getpid(), multiprocess_dir)  # type: ignore[no-untyped-call]
