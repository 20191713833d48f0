"""Which PostgreSQL to use, as which role, and bringing it up to date before anything else
touches it.

Two roles (db/roles.py): the owner migrates, loads reference data and runs the operator's
commands; the service serves requests. With `DATABASE_URL` the service's URL is `DATABASE_URL`
and the owner's `DATABASE_OWNER_URL` (the same role when unset: one role that can do everything,
which `serve` refuses in production). The embedded server makes both roles itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from db import embedded, preparation, provision, releases, roles
from db.engine import create_engine, one_connection
from db.errors import is_statement_timeout, privilege_refused
from sinergi.settings import Settings, SettingsError


@dataclass(frozen=True, slots=True)
class Database:
    owner_url: str
    service_url: str

    @property
    def service_role(self) -> str | None:
        """The role to grant the service's privileges to; None when it is the owner itself."""
        service = make_url(self.service_url).username
        return service if service != make_url(self.owner_url).username else None


def resolve(settings: Settings) -> Database:
    """`DATABASE_URL` (and `DATABASE_OWNER_URL`) when set, else the embedded server under
    SINERGI_HOME, with its two roles."""
    if settings.database_url is not None:
        if settings.owner_url is not None:
            _same_database(settings.owner_url, settings.database_url)
        return Database(settings.owner_url or settings.database_url, settings.database_url)
    try:
        embedded.check_socket_path(settings.home)
    except embedded.SocketPathTooLong as error:
        raise SettingsError(
            f"{_home_variable(settings)} is too long for the embedded PostgreSQL: {error}."
            " Use a shorter path (or set DATABASE_URL)"
        ) from None
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(
            f"SINERGI_HOME={settings.home} cannot hold the embedded PostgreSQL's data: "
            f"{error.strerror or error}"
        ) from None
    if not embedded.exists(settings.home):
        _announce_new_database(settings)
    try:
        admin_url = embedded.start(settings.home)
    except embedded.StartFailed as error:
        raise SettingsError(_would_not_start(settings, error)) from None
    name = embedded.DATABASE_NAME
    asyncio.run(
        provision.ensure_database(
            admin_url, name, owner=embedded.OWNER_ROLE, service=embedded.SERVICE_ROLE
        )
    )
    return Database(
        provision.with_role(admin_url, embedded.OWNER_ROLE, name),
        provision.with_role(admin_url, embedded.SERVICE_ROLE, name),
    )


_REFUSED_CONNECTION = ("08", "28", "3D")
"""SQLSTATE classes of a connection PostgreSQL refused: connection exception, invalid
authorisation (an unknown role, a wrong password, pg_hba.conf), invalid catalog (no such
database)."""


def unreachable(error: BaseException, settings: Settings) -> str | None:
    """One line saying which PostgreSQL could not be reached and why, when `error` is a failure
    to connect (refused, unknown host, timed out, TLS refused, a role or database PostgreSQL does
    not know, a Unix socket not there, a root certificate missing); None for anything else. The
    password is never part of it."""
    reason = _refused(error) or _failed_connecting(error, settings.tls_files)
    if reason is None:
        return None
    return f"cannot reach PostgreSQL at {_where(settings)}: {reason}"


def replica_unreachable(
    error: BaseException, replica_url: str, tls_files: tuple[tuple[str, str], ...]
) -> str | None:
    """As `unreachable`, for a connection to DATABASE_REPLICA_URL: named by the variable and
    its own address, not the primary's, which answered."""
    reason = _refused(error) or _failed_connecting(error, tls_files)
    if reason is None:
        return None
    return f"cannot reach DATABASE_REPLICA_URL's PostgreSQL at {_place(replica_url)}: {reason}"


def _refused(error: BaseException) -> str | None:
    """Why PostgreSQL refused the connection, or the network did not carry it."""
    if isinstance(error, DBAPIError):
        sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
        return str(error.orig) if sqlstate[:2] in _REFUSED_CONNECTION else None
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        return error.strerror or str(error)
    return None


_CONNECT = asyncpg.connect.__code__
"""Every connection Sinergi opens goes through `asyncpg.connect`: SQLAlchemy's driver calls it,
and so do the notifications' and the embedded server's own connections."""


def _failed_connecting(error: BaseException, tls_files: tuple[tuple[str, str], ...]) -> str | None:
    """Why `asyncpg.connect` failed, when `error` is, or wraps, what it raised: any OSError (a
    Unix socket not there, TLS refused: ssl.SSLError is one) or asyncpg's InterfaceError (a
    configuration it refuses before connecting, ClientConfigurationError: `sslmode=verify-full`
    without a root certificate). Which exception alone cannot tell: a file missing, or an
    InterfaceError, anywhere else is a bug, and stays a traceback."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, asyncpg.InterfaceError)) and any(
            frame.f_code is _CONNECT for frame, _ in traceback.walk_tb(current.__traceback__)
        ):
            if isinstance(current, OSError):
                return _naming_the_file(current, tls_files)
            return str(current.args[0])  # without asyncpg's HINT, a second line
        if isinstance(current, DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__
    return None


_ASYNCPG = os.path.dirname(asyncpg.__file__) + os.sep


def _naming_the_file(error: OSError, tls_files: tuple[tuple[str, str], ...]) -> str:
    """Why `error`, naming the file missing when a TLS variable names it: ssl's loaders raise a
    FileNotFoundError that names no file, from asyncpg's own code (a Unix socket not there fails
    in asyncio's), and the operator would not know which of them to look at."""
    reason = error.strerror or str(error)
    if not isinstance(error, FileNotFoundError) or error.filename is not None:
        return reason
    *_, (innermost, _) = traceback.walk_tb(error.__traceback__)
    if not innermost.f_code.co_filename.startswith(_ASYNCPG):
        return reason
    missing = [f"{path} ({name})" for name, path in tls_files if not os.path.exists(path)]
    return f"{reason}: {', '.join(missing)}" if missing else reason


def needs_owner(error: BaseException) -> str | None:
    """One line when `error` is PostgreSQL refusing the role a privilege, None otherwise: the
    command ran as a role short of the owner's rights, most likely the service's URL given
    alone (`docker compose exec api sinergi …`, whose DATABASE_URL is the service's), which
    may neither migrate, nor load reference data, nor manage clients."""
    refused = privilege_refused(error)
    if refused is None:
        return None
    return (
        f"{refused}: this command needs the database owner's URL (DATABASE_OWNER_URL, or"
        " DATABASE_URL naming the owner)"
    )


def timed_out(error: BaseException) -> str | None:
    """One line when a command's statement ran past its statement timeout, None otherwise.
    A command's connection waits for locks without a lock timeout of its own, so this is most
    often another transaction holding what the command needs (a migration, an import, another
    operator's command), which only the operator can see and wait out; a traceback told them
    nothing they could act on."""
    if not is_statement_timeout(error):
        return None
    return (
        "a statement ran past its time limit, most likely waiting for another transaction"
        " (a migration, an import, another command; pg_stat_activity shows which): run the"
        " command again once it has finished"
    )


def _same_database(owner_url: str, service_url: str) -> None:
    """Refuses (SettingsError) an owner's and a service's URL naming different databases:
    `sinergi migrate` migrated and granted the one while the service's defaults were reset on
    the other, and `serve` would serve a database nobody prepared. Only the names are compared:
    the two roles often reach one server by different routes (the owner over a Unix socket, the
    service through PgBouncer), which the URLs cannot tell from two servers."""
    owner, service = make_url(owner_url).database or "", make_url(service_url).database or ""
    if owner != service:
        raise SettingsError(
            f"DATABASE_OWNER_URL names database {owner!r} but DATABASE_URL names {service!r}:"
            " the owner's and the service's URL must name the same database"
        )


def _where(settings: Settings) -> str:
    """The database the settings name, as host:port/database (no role, no password)."""
    url = settings.owner_url or settings.database_url
    if url is None:
        return f"the embedded server under SINERGI_HOME={settings.home}"
    return _place(url)


def _place(url: str) -> str:
    """The database `url` names, as host:port/database (no role, no password)."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"  # a socket directory, maybe
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"


def resolve_url(settings: Settings) -> str:
    """The URL the service connects as."""
    return resolve(settings).service_url


def prepared(settings: Settings) -> Database:
    """The database, migrated, its service role granted, and holding the reference data
    (regions, KBLI, programmes, indicators) that clients and records refer to: prepared unless
    it records that this code prepared it already (db/preparation.py), which one query tells.
    For the commands whose job is setting the database up (`serve`, `demo-data`)."""
    return _prepared(settings, setting_up=True)


def ready(settings: Settings) -> Database:
    """As `prepared`, for every other command: a database named by `DATABASE_URL` that holds no
    Sinergi schema, or whose migrations are pending, is refused (SchemaNotCurrent) rather than
    created or upgraded, since it may be anyone's (a typo in the URL, the wrong server); one at
    the newest migrations still gets its grants and reference data. The embedded database,
    which Sinergi made for itself under SINERGI_HOME, is prepared as `prepared` does."""
    return _prepared(settings, setting_up=False)


def _prepared(settings: Settings, *, setting_up: bool) -> Database:
    database = resolve(settings)
    expected = _fingerprint(database)
    if not asyncio.run(_is_prepared(database.owner_url, expected)):
        if not setting_up and settings.database_url is not None:
            problem = asyncio.run(_schema_problem(database.owner_url))
            if problem is not None:
                raise SchemaNotCurrent(f"the database at {_where(settings)} {problem}")
        asyncio.run(
            _prepare(
                database, expected, unless_prepared=True, wait_seconds=settings.prepare_wait_seconds
            )
        )
    return database


def current(settings: Settings) -> Database:
    """The database, at this code's migrations, for a command that only reads (`audit
    verify`): refused as `ready` refuses (SchemaNotCurrent) when it holds no schema or has
    migrations pending, but preparing nothing, so that it needs no owner: compose's API
    container, where the README runs `audit verify`, has only the service's URL, which is then
    the owner's too (`resolve`). The embedded database is prepared as `ready` does."""
    if settings.database_url is None:
        return ready(settings)
    database = resolve(settings)
    problem = asyncio.run(_schema_problem(database.owner_url))
    if problem is not None:
        raise SchemaNotCurrent(f"the database at {_where(settings)} {problem}")
    return database


async def _schema_problem(url: str) -> str | None:
    """Why the database at `url` is not at this code's migrations, or None when it is."""
    from db.migrate import SchemaState, schema_state

    current = await _stands_at(url)
    if not current:
        return "holds no Sinergi schema: `sinergi migrate` creates it, if it is the right database"
    if schema_state(current) is SchemaState.BEHIND:
        return "has migrations pending: run `sinergi migrate` to bring it up to date"
    return None


async def _stands_at(url: str) -> frozenset[str]:
    """The Alembic revisions the database at `url` stands at; none when never migrated."""
    from db.migrate import revisions

    async with one_connection(url, statement_timeout_ms=10_000) as connection:
        return await revisions(connection)


def migrated(settings: Settings) -> Database:
    """As `prepared`, but every step runs whatever the database records: `sinergi migrate`, which
    also puts back what was changed behind the steps' back (a grant revoked, a region edited)."""
    database = resolve(settings)
    asyncio.run(
        _prepare(
            database,
            _fingerprint(database),
            unless_prepared=False,
            wait_seconds=settings.prepare_wait_seconds,
        )
    )
    return database


def _fingerprint(database: Database) -> str:
    from domain.ruleset import BUNDLED_RULESETS
    from sinergi.demo import SEED_DATA

    return preparation.fingerprint([SEED_DATA, BUNDLED_RULESETS], database.service_role)


async def _prepare(
    database: Database, fingerprint: str, *, unless_prepared: bool, wait_seconds: int
) -> None:
    """Migrate, grant, reset the service role's own defaults, load the reference data and
    record `fingerprint`: all idempotent, and (`unless_prepared`) skipped when the database
    records `fingerprint` already. Alembic is imported here, so a command on a prepared
    database never loads it.

    One process at a time, under a session advisory lock held on an owner's connection of its
    own: two `migrate`s, or replicas' `serve`s, on the same database raced each other (CREATE
    TYPE's duplicate key in pg_type, GRANT's "tuple concurrently updated") and one ended in a
    traceback. The others wait, `wait_seconds` at most (PreparingLockHeld), then find the work
    done.

    A database past this code's migrations (a newer release's `sinergi migrate` ran first, as
    the README's "Upgrading" has it) is left alone: Alembic cannot upgrade from a revision it
    does not know (a traceback), and this release's reference data is older than that
    release's. `serve` and the other commands use it as it stands (`/readyz` calls it ready);
    `sinergi migrate` (not `unless_prepared`) refuses, since it could only go backwards."""
    from db.migrate import SchemaState, schema_state, upgrade

    async with preparing(database.owner_url, wait_seconds):
        if unless_prepared and await _is_prepared(database.owner_url, fingerprint):
            return
        stands_at = await _stands_at(database.owner_url)
        if schema_state(stands_at) is SchemaState.AHEAD:
            newer = ", ".join(sorted(stands_at))
            if not unless_prepared:
                raise SchemaNotCurrent(
                    f"this release is older than the database, which stands at a newer release's"
                    f" migration {newer}: run that release's `sinergi migrate`, or a newer one"
                )
            print(
                f"sinergi: note: the database is at a newer release's migration {newer}; this"
                " release serves it without preparing (no migrations, no reference data)",
                file=sys.stderr,
            )
            return
        # Alembic runs its own event loop, so in a thread of its own.
        await asyncio.to_thread(upgrade, database.owner_url, service_role=database.service_role)
        if database.service_role is not None:
            await _reset_service_defaults(database.service_url)
        await _load_reference(database.owner_url, fingerprint)


@asynccontextmanager
async def preparing(owner_url: str, wait_seconds: int) -> AsyncIterator[None]:
    """The preparing lock, held for the block (`_prepare`, and `serve --dev`'s demo data and
    clients, sinergi.demo_mode): waited for, then released with its connection's session,
    whatever happened. The connection is in autocommit: an open transaction beside the
    migrations would hold back any index built CONCURRENTLY."""
    async with one_connection(owner_url, statement_timeout_ms=0) as lock:
        await lock.execution_options(isolation_level="AUTOCOMMIT")
        await _wait_to_prepare(lock, wait_seconds)
        yield


async def _wait_to_prepare(lock: AsyncConnection, wait_seconds: int) -> None:
    """Take the preparing lock on `lock`, asking again every `_POLL_SECONDS` while another
    process holds it. Not `pg_advisory_lock`, which waits inside a running statement: that
    statement's snapshot holds back a `CREATE INDEX CONCURRENTLY` in the holder's migrations,
    which waits for older snapshots, and PostgreSQL aborted one of the two as a deadlock.
    Between tries this connection runs nothing and holds no snapshot.

    A holder that never lets go (a migration stuck on a lock of its own, a session left open
    in psql) hung `serve` without a word: the wait names the holder at once and every
    `_REPORT_SECONDS`, and ends after `wait_seconds` (PreparingLockHeld)."""
    started = time.monotonic()
    report_at = started
    while not (await lock.execute(_TRY_PREPARING)).scalar_one():
        now = time.monotonic()
        if now - started >= wait_seconds:
            raise PreparingLockHeld(
                f"another process has been preparing the database for over {wait_seconds} s"
                f" (SINERGI_PREPARE_WAIT): {await _holder(lock)}; if it is stuck, end it"
                " (pg_terminate_backend) and run this again"
            )
        if now >= report_at:
            print(
                f"sinergi: another process is preparing the database ({await _holder(lock)});"
                " waiting",
                file=sys.stderr,
            )
            report_at = now + _REPORT_SECONDS
        await asyncio.sleep(_POLL_SECONDS)


async def _holder(lock: AsyncConnection) -> str:
    """Who holds the preparing lock, as pg_locks and pg_stat_activity tell it (a role that may
    not see that session's details gets its pid and application name alone)."""
    row = (await lock.execute(_HOLDER)).first()
    if row is None:
        return "a process that has just let go"
    since = "unknown" if row.backend_start is None else row.backend_start.isoformat("T", "seconds")
    return f"pid {row.pid}, application {row.application_name or ''!r}, connected since {since}"


_LOCK_NAME = "sinergi.prepare"
_LOCK_KEY = f"hashtext('{_LOCK_NAME}')"
_TRY_PREPARING = text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})")
_HOLDER = text(
    "WITH k AS (SELECT hashtext(:lock)::bigint AS key)"
    " SELECT l.pid, a.application_name, a.backend_start"
    " FROM k, pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    "   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    # A bigint key is split in two: its high 32 bits in classid, its low ones in objid.
    "   AND l.classid::bigint = (k.key >> 32) & 4294967295"
    "   AND l.objid::bigint = k.key & 4294967295"
    " ORDER BY l.pid LIMIT 1"
).bindparams(lock=_LOCK_NAME)
_POLL_SECONDS = 0.5
"""How long a process waiting to prepare sleeps between asking for the lock again."""
_REPORT_SECONDS = 30
"""How often a waiting process says again who it waits for."""


async def _reset_service_defaults(url: str) -> None:
    """As the service, which alone (short of a superuser) may reset its own defaults."""
    async with one_connection(url, statement_timeout_ms=10_000, transaction=True) as connection:
        await roles.reset_own_defaults(connection)


async def _is_prepared(url: str, fingerprint: str) -> bool:
    async with one_connection(url, statement_timeout_ms=10_000) as connection:
        return await preparation.is_prepared(connection, fingerprint)


class PreparingLockHeld(RuntimeError):
    """Another process held the preparing lock longer than SINERGI_PREPARE_WAIT allows."""


class SchemaNotCurrent(RuntimeError):
    """The database is not at this code's migrations and this command will not make it so: the
    service role cannot migrate and the owner has not, or a newer release migrated it."""


def prepared_for_serving(settings: Settings) -> Database:
    """As `prepared`, except for a service role given alone (`DATABASE_URL` without
    `DATABASE_OWNER_URL`, as compose gives the API): it cannot migrate, so the schema must be
    current already (`sinergi migrate`, with the owner's URL, made it so)."""
    if settings.database_url is None or settings.owner_url is not None:
        return prepared(settings)
    database = resolve(settings)
    if asyncio.run(_migrates(database.service_url)):
        return prepared(settings)  # one role that can do everything: it migrates, as before
    if not asyncio.run(_is_current(database.service_url)):
        raise SchemaNotCurrent(
            "the database schema is not current; run `sinergi migrate` with DATABASE_OWNER_URL"
        )
    return database


async def _is_current(url: str) -> bool:
    from db.migrate import is_current

    engine = create_engine(url, statement_timeout_ms=10_000, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await is_current(connection)
    except ProgrammingError:  # not even granted the version table: never migrated for it
        return False
    finally:
        await engine.dispose()


def _home_variable(settings: Settings) -> str:
    """The variable that named the home: SINERGI_HOME, or XDG_DATA_HOME when the home is its
    default beneath it, so the operator knows which one to shorten."""
    home = settings.home
    if settings.home_set or home != settings.data_home:
        return f"SINERGI_HOME={home}"
    if settings.xdg_data_home:
        return f"XDG_DATA_HOME={settings.xdg_data_home} (SINERGI_HOME={home})"
    return f"SINERGI_HOME={home} (the default under your home directory; set SINERGI_HOME)"


def _would_not_start(settings: Settings, error: embedded.StartFailed) -> str:
    """One line for a data directory the embedded server would not start: the server's own
    reason, where its log is, and, for a file it may not open, that a copy must keep owners
    (as root the server runs as its own user, and `cp -r` makes the copy root's)."""
    line = (
        f"{_home_variable(settings)} holds an embedded PostgreSQL that would not start: "
        f"{error.reason} (its log: {error.log})"
    )
    if "Permission denied" in error.reason:
        line += "; a copy of SINERGI_HOME must keep its files' owners (cp -a)"
    return line


def _announce_new_database(settings: Settings) -> None:
    """Says so as a command makes a new, empty database while another one exists: a command run
    with another SINERGI_HOME than the server's would otherwise quietly use it. It does not wait
    (a command may run unattended), so it names the way to the other one for the next run."""
    home = settings.home
    others = embedded.running_homes()
    if embedded.exists(settings.data_home):
        others.add(settings.data_home)
    others = {other.resolve() for other in others} - {home.resolve()}
    print(f"sinergi: creating a new database under SINERGI_HOME={home}", file=sys.stderr)
    for other in sorted(others):
        print(
            f"sinergi: note: a Sinergi database already exists under {other}; this one is new,"
            f" under {home}: to use {other}'s, run again with SINERGI_HOME={other}",
            file=sys.stderr,
        )


def ready_url(settings: Settings) -> str:
    """The owner's URL of the database, ready for the operator's commands (`ready`)."""
    return ready(settings).owner_url


async def _load_reference(url: str, fingerprint: str) -> None:
    from db.seed import load_reference
    from sinergi.demo import SEED_DATA

    async with one_connection(url, statement_timeout_ms=120_000, transaction=True) as connection:
        await load_reference(connection, SEED_DATA, targets=False)
        await preparation.record(connection, fingerprint)


async def privileges_beyond_service(url: str) -> str | None:
    """What the role at `url` holds beyond what db/roles.py grants the service, or None.

    Each of these reaches past the service's grants: a superuser, or the owner, rewrites the
    audit trail outright; CREATEROLE grants itself membership in the owner (PostgreSQL 15 lets
    it), then `SET ROLE`; CREATEDB and REPLICATION reach beyond this database (a copy of it,
    the whole cluster's WAL); BYPASSRLS skips row-level security; membership in any role,
    direct or through another (db/roles.py `MEMBERSHIPS`), holds that role's privileges (a
    table's INSERT, the server's file and program roles' shell, `COPY … FROM PROGRAM`), which no
    REVOKE on the service reaches; and an owner of any object in the database (a schema, a
    table, a function, a type, the database itself) may alter or replace it; CREATE on the
    database makes a schema, one named like the owner ahead of `public` on the owner's default
    search_path, where a view named like `audit_log` runs as the owner in its psql. Temporary
    objects and large objects, which any role may make, are not counted. Nor may it rewrite
    what it only reads or appends to: a release's copies (a forged figure, a suppression undone)
    or the audit trail's tables, whatever granted it (by hand, or a default privilege)."""
    async with one_connection(url, statement_timeout_ms=10_000) as connection:
        return await privileges_held(connection)


async def privileges_held(connection: AsyncConnection) -> str | None:
    """`privileges_beyond_service` of the role `connection` is made as: for a pool's connection
    (the replica's, checked once it first answers, db.reads.Replica)."""
    row = (await connection.execute(_PRIVILEGES, {"copies": list(releases.SCHEMAS)})).one()
    member_of = sorted({held.role for held in await roles.memberships(connection, row.name)})
    reasons = [reason for column, reason in _ATTRIBUTES.items() if row._mapping[column]]
    if member_of:
        reasons.append(f"is a member of {', '.join(member_of)}")
    # No REVOKE reaches a superuser, nor the owner of the database or of the audit trail, who
    # may grant it all again: serving as the service role is their one remedy, not `migrate`.
    revocable = not (row.rolsuper or row.owns_database or row.owns_audit)
    if row.creates:
        reasons.append(
            "may create schemas in this database"
            + (
                " (CREATE on it: `sinergi migrate` takes it back, or, as the database's owner,"
                f" REVOKE CREATE ON DATABASE {row.database} FROM PUBLIC, {row.name})"
                if revocable
                else ""
            )
        )
    if row.rewrites:
        named = ", ".join(row.rewrites[:3]) + (", …" if len(row.rewrites) > 3 else "")
        reasons.append(
            f"may rewrite {len(row.rewrites)} table(s) the service only reads or appends to"
            f" ({named})" + (": `sinergi migrate` takes that back" if revocable else "")
        )
    if row.owns_audit:
        reasons.append("owns the audit trail")
    elif row.owned:
        named = ", ".join(row.owned[:3]) + (", …" if len(row.owned) > 3 else "")
        reasons.append(f"owns {len(row.owned)} object(s) in this database ({named})")
    return f"the database role {row.name!r} {', '.join(reasons)}" if reasons else None


async def system_identifier(url: str) -> int:
    """The identifier of the database cluster at `url`, which its streaming replicas share."""
    async with one_connection(url, statement_timeout_ms=10_000) as connection:
        return int(await connection.scalar(text(_SYSTEM_IDENTIFIER)))


_SYSTEM_IDENTIFIER = "SELECT system_identifier FROM pg_control_system()"

_ATTRIBUTES = {
    "rolsuper": "is a superuser",
    "rolcreaterole": "may create roles (CREATEROLE)",
    "rolcreatedb": "may create databases (CREATEDB)",
    "rolreplication": "may stream the server's WAL (REPLICATION)",
    "rolbypassrls": "bypasses row-level security (BYPASSRLS)",
}
"""The role's attributes that `_PRIVILEGES` reads, each with why it is refused."""

_PRIVILEGES = text(
    "SELECT r.rolname AS name, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,"
    " r.rolbypassrls, current_database() AS database,"
    " has_database_privilege(current_database(), 'CREATE') AS creates,"
    " pg_has_role(r.oid, (SELECT relowner FROM pg_class"
    "   WHERE oid = to_regclass('public.audit_log')), 'MEMBER') AS owns_audit,"
    " pg_has_role(r.oid, (SELECT datdba FROM pg_database"
    "   WHERE datname = current_database()), 'MEMBER') AS owns_database,"
    # pg_shdepend names the owner of every object of every kind, as DROP OWNED reads it.
    " ARRAY(SELECT pg_describe_object(d.classid, d.objid, d.objsubid)"
    "   FROM pg_shdepend d, pg_database db"
    "   WHERE db.datname = current_database() AND d.deptype = 'o'"
    "     AND d.refclassid = 'pg_authid'::regclass AND pg_has_role(r.oid, d.refobjid, 'MEMBER')"
    "     AND (d.dbid = db.oid OR d.classid = 'pg_database'::regclass AND d.objid = db.oid)"
    "     AND d.classid <> 'pg_largeobject'::regclass"
    "     AND coalesce((pg_identify_object(d.classid, d.objid, d.objsubid)).schema"
    "       !~ '^pg_(toast_)?temp_', true)"
    "   ORDER BY 1) AS owned,"
    # The audit trail's tables, appended to; a release's copies, read.
    " ARRAY(SELECT c.oid::regclass::text FROM pg_class c"
    "  CROSS JOIN LATERAL (SELECT c.relnamespace::regnamespace::text = ANY(:copies) AS copy) k"
    "   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    "     AND (k.copy OR c.oid IN (to_regclass('public.audit_log'),"
    "                              to_regclass('public.audit_seals')))"
    "     AND (has_any_column_privilege(c.oid, 'UPDATE')"
    "          OR has_table_privilege(c.oid, 'DELETE, TRUNCATE, TRIGGER')"
    "          OR k.copy AND has_any_column_privilege(c.oid, 'INSERT'))"
    "   ORDER BY 1) AS rewrites"
    " FROM pg_roles r WHERE r.rolname = current_user"
)


async def _migrates(url: str) -> bool:
    """Whether the role at `url` is a superuser or a member of the audit trail's owner (of the
    database's, before there is an audit trail): one role that can do everything, which
    migrates for itself."""
    async with one_connection(url, statement_timeout_ms=10_000) as connection:
        return bool((await connection.execute(_MIGRATES)).scalar_one())


_MIGRATES = text(
    "SELECT rolsuper OR pg_has_role(current_user, coalesce("
    "   (SELECT relowner FROM pg_class WHERE oid = to_regclass('public.audit_log')),"
    "   (SELECT datdba FROM pg_database WHERE datname = current_database())), 'MEMBER')"
    " FROM pg_roles WHERE rolname = current_user"
)


def in_transaction(
    settings: Settings,
    work: Callable[[AsyncConnection], Awaitable[int]],
    *,
    committed: Callable[[str], Awaitable[int]] | None = None,
) -> int:
    """Run a CLI command's `work` in one transaction on the ready database, as its owner;
    its exit code. `committed`, for what must follow the commit (`clients revoke` waits for
    every server process to apply it), runs after a `work` that returned 0, with the owner's
    URL, and gives the exit code instead."""
    url = ready_url(settings)

    async def run() -> int:
        async with one_connection(url, statement_timeout_ms=30_000, transaction=True) as connection:
            code = await work(connection)
        return code if committed is None or code != 0 else await committed(url)

    return asyncio.run(run())
