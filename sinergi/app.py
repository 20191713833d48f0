"""The ASGI application factory. The lifespan owns the engine and the auth service."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from auth import keys, registry, tokens
from auth.clients import DEMO_SECRET, refused_secret
from auth.external import ExternalIssuer, parse_external_issuers
from auth.http import TOKEN_PATH, jwks_endpoint, metadata_endpoint, token_endpoint
from auth.service import AuthService
from db import change_signal, releases
from db.engine import autocommit, create_engine, dispose_all
from db.migrate import is_current
from db.notifications import Listener, libpq_url
from db.queries.audit import AuditWriter
from db.reads import Replica
from domain.cursor_seal import CursorSeal
from resolvers.context import Limits
from schema.build import build_schema
from schema.figure_cache import FigureCache
from sinergi import audit_key, metrics, tracing
from sinergi.audit_sealer import AuditSealer
from sinergi.database import privileges_held
from sinergi.demo_mode import DEMO_CLIENT_IDS
from sinergi.figure_releaser import FigureReleaser
from sinergi.graphiql import GraphiQLPage
from sinergi.graphql_app import SinergiGraphQL
from sinergi.guard import BodyDeadlines, OperationChecks, RequestGuard
from sinergi.http_edge import GraphQLOverHTTP, unknown_path, unsupported_method
from sinergi.logs import lean_records
from sinergi.loopback import LoopbackOnly
from sinergi.observe import Observer
from sinergi.rate_limit import RateLimiter
from sinergi.settings import MetricsAccess, Settings
from sinergi.trusted_documents import TrustedDocuments

DEMO_CLIENT_ID = "demo-province-62"
GRAPHQL_PATH = "/graphql"
STOP_SECONDS = 5.0
"""How long the background work is given to stop once the app stops (its last rate-limit counts
and audit seal written), and then again the engines to close their connections: a database
that stopped answering (its packets dropped) otherwise held the process's end for ever, past
the shutdown grace and into the SIGKILL that follows it. What was not written then is not
lost: the next start seals what this one left."""
YOUNG_OBJECTS = 10_000
"""How many more objects the collector lets be allocated than freed before it walks the young
ones, while serving: CPython's 700 is reached in bursts that leave no garbage (the sealer's rows,
a batch of audit entries, the requests in flight), since a request leaves no reference cycle
behind (tests/test_context_freed.py); each such collection walked the young objects of every
request in flight, and promoted them to be walked again: some 12 µs of a lookup's CPU, none at
10,000. What cyclic garbage there is waits a little longer for its collection."""
logger = logging.getLogger("sinergi.app")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


READINESS_SECONDS = 1.0
"""How long the database's readiness answer is given again without asking it."""
READINESS_TIMEOUT_SECONDS = 3.0
"""How long the database is given to answer the readiness check, connection included: the
statement timeout bounds its query alone, may be long (SINERGI_STATEMENT_TIMEOUT_MS), and an
engine made without one (statement_timeout_ms=0) bounds nothing, and a check held up by a lock
(a migration's on alembic_version) would otherwise keep every probe waiting on it, the instance
never answering not-ready."""


class DatabaseReadiness:
    """Whether the database can be served, asked of it at most once a second.

    `/readyz` needs no token: asked on every probe, a flood of them would take the pool's
    connections from the requests that need them. The answer is kept for READINESS_SECONDS,
    and while the database is being asked, the probes that arrive wait for that answer rather
    than ask again."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.lock = asyncio.Lock()
        self.trouble: str | None = None
        self.stale_at = -math.inf

    async def trouble_now(self) -> str | None:
        """None when ready; else what is wrong, for the probe's answer."""
        if time.monotonic() < self.stale_at:
            return self.trouble
        async with self.lock:
            if time.monotonic() >= self.stale_at:
                self.trouble = await self._asked()
                self.stale_at = time.monotonic() + READINESS_SECONDS
            return self.trouble

    async def _asked(self) -> str | None:
        bound = asyncio.timeout(READINESS_TIMEOUT_SECONDS)
        try:
            async with bound, self.engine.connect() as connection:  # one connection for all
                current = await is_current(connection)
        except Exception:
            return (
                f"no answer within {READINESS_TIMEOUT_SECONDS:g} s"
                if bound.expired()
                else "unreachable"
            )
        return None if current else "migrations pending"


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers and its schema is at this code's newest migration or
    past it: during a rolling upgrade the new release migrates first, and the instances still
    running this one keep serving until they are replaced (README, "Upgrading"); and while its
    audit key is the trail's: an instance whose sealer found the trail sealed with another key
    (sinergi.audit_sealer) would hand out change-feed cursors no other instance opens."""
    if request.state.sealer.wrong_key:
        return JSONResponse({"status": "unavailable", "audit": "another key sealed the trail"}, 503)
    readiness: DatabaseReadiness = request.state.readiness
    trouble = await readiness.trouble_now()
    if trouble is not None:
        return JSONResponse({"status": "unavailable", "database": trouble}, status_code=503)
    return JSONResponse({"status": "ready"})


@asynccontextmanager
async def _serving(
    settings: Settings,
    engine: AsyncEngine,
    replica: AsyncEngine | None,
    external_issuers: dict[str, ExternalIssuer],
    rate_limiter: RateLimiter,
    state: dict[str, Any],
    sealer: AuditSealer,
    deadlines: BodyDeadlines,
    key: bytes,
    releaser: FigureReleaser,
    figures: FigureCache | None,
) -> AsyncIterator[dict[str, Any]]:
    """The lifespan state requests see, and the process's background work: the listener that
    keeps the client registry current and wakes the change feed's subscriptions and the reading
    of the signing keys, that reading (auth/keyring.py), the rate limiter's counting in
    PostgreSQL, the deadlines of request bodies, the audit trail's sealing, the figure
    releases and the replica's lag. All of it is given STOP_SECONDS to stop; the lifespan then
    disposes of the engines.
    `key`, the audit key, signs the audit entries and, derived, the change feeds' cursors and
    the access tokens' seals.
    `figures`, the figure cache, hears of each release from the listener."""
    await releaser.first()
    auth = AuthService(
        engine,
        issuer=settings.issuer,
        audience=settings.audience,
        token_lifetime_seconds=settings.token_lifetime_seconds,
        token_seal_key=tokens.seal_key(key),
        external_issuers=external_issuers,
        failure_limits=settings.failure_limits,
        secret_checks=settings.secret_checks,
        throttle_connections=max(1, settings.db_pool_size // 2),
        refused_secret=refused_secret(settings.dev),
        demo_clients=DEMO_CLIENT_IDS,
    )
    await auth.startup()
    state["auth"] = auth
    primary = autocommit(engine)
    changes = change_signal.ChangeSignal()
    listener = Listener(
        libpq_url(engine.url),
        {
            registry.CHANNEL: auth.registry,
            keys.CHANNEL: auth.key_ring,
            change_signal.CHANNEL: changes,
            **({releases.CHANNEL: figures} if figures is not None else {}),
        },
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
    )
    background = [
        asyncio.create_task(listener.run(), name="sinergi-listener"),
        asyncio.create_task(auth.key_ring.run(), name="sinergi-signing-keys"),
        asyncio.create_task(rate_limiter.run(primary), name="sinergi-rate-limit"),
        asyncio.create_task(deadlines.run(), name="sinergi-body-deadlines"),
        asyncio.create_task(releaser.run(), name="sinergi-figure-releases"),
    ]
    lagging = None
    if replica is not None:
        lagging = Replica(
            autocommit(replica),
            settings.read_your_writes_seconds,
            metrics.observe_replica_lag,
            # `serve`'s start-up refusal of a privileged replica, made again once it answers.
            None if settings.dev or settings.unsafe_privileged_role else _replica_refusal,
        )
        await lagging.watch(primary)  # no read goes to it before it is known current
        background.append(asyncio.create_task(lagging.run(primary), name="sinergi-replica-lag"))
    sealer.start()
    served = {
        "engine": engine,
        "readiness": DatabaseReadiness(engine),
        "primary": primary,
        "replica": lagging,
        "auth": auth,
        "deadlines": deadlines,
        "regions": auth.regions,
        "audit": AuditWriter(primary, key),
        "changes": changes,
        "cursor_seal": CursorSeal(key),
        "sealer": sealer,
    }
    # What is alive now (modules, the schema, pools) lives as long as the app: frozen, the
    # collector no longer walks it on each of the collections a request's garbage sets off.
    # Unfrozen when the app stops, so an app started again in the same process (tests) leaves
    # its predecessor collectable, and the young generation's threshold given back.
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, *thresholds[1:])
    try:
        yield served
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        for task in background:
            task.cancel()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await asyncio.gather(*background, return_exceptions=True)
                await rate_limiter.flush(primary)
                await sealer.stop()
        except TimeoutError:
            logger.warning(
                "stopping: the database did not answer within %g s; this process's last"
                " rate-limit counts and audit seal are not written",
                STOP_SECONDS,
            )
        metrics.worker_exiting(settings.metrics_dir)


async def _replica_refusal(connection: AsyncConnection) -> str | None:
    """Why serving may not read the replica `connection` reaches: its role holds more than the
    service's grants (`privileges_held`), as `serve` refuses to start with, unless accepted."""
    reason = await privileges_held(connection)
    if reason is None:
        return None
    return (
        f"DATABASE_REPLICA_URL: {reason}: more than the service needs, enough to rewrite the"
        " audit trail or reach the server itself. Read it as the service role (README,"
        " 'Database roles'), or accept the risk with --unsafe-privileged-role or"
        " SINERGI_UNSAFE_PRIVILEGED_ROLE=true"
    )


class Sinergi(Starlette):
    """Starlette, except that HTTP requests to `/graphql` go down a pipeline of their own, built
    once: the request's observer, GraphQL over HTTP, the guard and the endpoint. Starlette's
    error middleware and router would only pass them on (errors are the Observer's to answer,
    sinergi.observe), yet on a `{ __typename }` their layers cost a tenth of the request, and
    every await that resumes passes through each layer's frame again."""

    def __init__(self, *, graphql_http: ASGIApp, **starlette: Any) -> None:
        super().__init__(**starlette)
        # A path with a trailing slash is an unknown path (the contract's coded 404), not a 307
        # to the path without it: that redirect is built from the request's Host and scheme,
        # and a token client following it posts its secret again, to wherever they say.
        self.router.redirect_slashes = False
        self.graphql_http = graphql_http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == GRAPHQL_PATH:
            await self.graphql_http(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _wrapped(app: ASGIApp, layers: list[Middleware]) -> ASGIApp:
    """`app` inside `layers`, the first outermost, as Starlette stacks its middleware."""
    for cls, args, kwargs in reversed(layers):
        app = cls(app, *args, **kwargs)
    return app


def _engine(settings: Settings, url: str, *, pool_size: int | None = None) -> AsyncEngine:
    return create_engine(
        url,
        statement_timeout_ms=settings.statement_timeout_ms,
        lock_timeout_ms=settings.lock_timeout_ms,
        pool_size=pool_size or settings.db_pool_size,
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
        pool_timeout_seconds=settings.db_pool_timeout_seconds,
    )


def create_app(
    settings: Settings, *, database_url: str, tracer_provider: TracerProvider | None = None
) -> Sinergi:
    """`tracer_provider` (tests) replaces the one the settings describe; the app shuts it down."""
    external_issuers = parse_external_issuers(settings.external_issuers)
    key = audit_key.load(settings)
    state: dict[str, Any] = {}
    traces = tracer_provider or tracing.provider_for(settings.otlp_endpoint, settings.service_name)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        engine = _engine(settings, database_url)
        replica = _engine(settings, settings.replica_url) if settings.replica_url else None
        engines = [engine] if replica is None else [engine, replica]
        traced = nullcontext() if traces is None else tracing.statements_traced(traces, engines)
        # Its own connection: sealing never waits for, nor holds up, a request's.
        sealing = _engine(settings, database_url, pool_size=1).execution_options(
            background="audit sealing"  # no request's: statement counts leave it out
        )
        sealer = AuditSealer(
            sealing,
            key,
            settings.audit_checkpoints_path,
            settings.audit_seal_seconds,
            settings.audit_syslog,
            settings.audit_unsealed_intervals,
        )
        # Its own connection too, with no time limit: a release takes seconds on a large
        # register, more than a request's statement may.
        releasing = create_engine(
            database_url,
            statement_timeout_ms=0,
            pool_size=1,
            connect_timeout_seconds=settings.db_connect_timeout_seconds,
        ).execution_options(background="figure release")
        releaser = FigureReleaser(releasing, settings.figures_release_seconds)
        try:
            with traced:
                async with _serving(
                    settings,
                    engine,
                    replica,
                    external_issuers,
                    rate_limiter,
                    state,
                    sealer,
                    deadlines,
                    key,
                    releaser,
                    graphql.engine.figures,
                ) as served:
                    yield served
        finally:
            if not await dispose_all([*engines, sealing, releasing], seconds=STOP_SECONDS):
                logger.warning(
                    "stopping: the database did not answer within %g s; its connections are"
                    " dropped unclosed",
                    STOP_SECONDS,
                )

    async def demo_token(address: str) -> str:
        auth: AuthService = state["auth"]
        return await auth.mint_for_client(DEMO_CLIENT_ID, DEMO_SECRET, address=address)

    graphiql = (
        GraphiQLPage(
            demo_token,
            token_lifetime_seconds=settings.token_lifetime_seconds,
            endpoint=GRAPHQL_PATH,
        )
        if settings.is_development
        else None
    )

    rate_limiter = RateLimiter(
        per_window=settings.rate_limit, window_seconds=settings.rate_limit_window_seconds
    )
    max_tokens = settings.query_limits.max_tokens
    schema = build_schema(
        max_batch=settings.query_limits.max_batch,
        max_cost=settings.query_limits.max_cost,
        max_tokens=max_tokens,
    )
    checks = OperationChecks(settings.query_limits, schema.as_str())
    deadlines = BodyDeadlines(settings.body_timeout_seconds)
    graphql = SinergiGraphQL(
        schema,
        limits=Limits(
            settings.max_page_size,
            settings.default_page_size,
            settings.suppression_k,
            settings.perturbation,
        ),
        rate_limiter=rate_limiter,
        checks=checks,
        trusted=TrustedDocuments(settings.trusted_documents, checks=checks),
        max_tokens=max_tokens,
        read_your_writes_seconds=settings.read_your_writes_seconds,
        figures_cache_seconds=settings.figures_cache_seconds,
        max_response_bytes=settings.query_limits.max_response_bytes,
        max_sockets_per_client=settings.max_sockets_per_client,
        connections_per_request=max(1, settings.db_pool_size // 2),
        init_timeout_seconds=settings.body_timeout_seconds,
    )
    routes: list[Route | WebSocketRoute] = [
        WebSocketRoute(GRAPHQL_PATH, graphql),  # subscriptions; sinergi/subscriptions.py admits
        Route(TOKEN_PATH, token_endpoint, methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", metadata_endpoint),
        Route("/.well-known/jwks.json", jwks_endpoint),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if settings.metrics_access is not MetricsAccess.OFF:  # else 404, as for any unknown path
        routes.append(
            metrics.metrics_route(
                token=settings.metrics_token, multiprocess_dir=settings.metrics_dir
            )
        )
    every_request = [
        *([tracing.middleware(traces)] if traces is not None else []),
        Middleware(Observer, routes=frozenset(route.path for route in routes)),
        # Under `serve --dev` anyone can act as the demo clients, whose secret is published:
        # a page of another site, rebound to this machine's address, would be same-origin.
        *([Middleware(LoopbackOnly)] if settings.dev else []),
    ]
    graphql_http = _wrapped(
        graphql,
        [
            *every_request,
            Middleware(
                GraphQLOverHTTP,
                graphiql=graphiql.render if graphiql is not None else None,
            ),
            Middleware(RequestGuard, checks=checks, deadlines=deadlines, rate_limiter=rate_limiter),
        ],
    )
    return Sinergi(
        graphql_http=graphql_http,
        routes=[*routes, *(graphiql.routes() if graphiql is not None else [])],
        middleware=every_request,
        exception_handlers={404: unknown_path, 405: unsupported_method},
        lifespan=lifespan,
    )


def app_from_env() -> Sinergi:
    """Factory for `sinergi serve`'s uvicorn workers only; DATABASE_URL is the operator's (its
    password read from DATABASE_PASSWORD_FILE here) or the embedded server's, put there by
    `serve`. Run by hand (`uvicorn --factory`) it skips serve's start-up refusals (clients
    holding the demo secret, a privileged role), and with SINERGI_DEV=true accepts that secret."""
    settings = Settings.from_env()
    assert settings.database_url is not None, "sinergi serve sets DATABASE_URL for its workers"
    lean_records()
    return create_app(settings, database_url=settings.database_url)
