"""Configuration, read once from the environment into one frozen object.

Everything below `sinergi` (db/, auth/, resolvers/) receives plain values from here, and no other
module reads the environment (tests/test_settings_environment.py): so tests build a `Settings`
directly instead of patching globals, and every variable is checked where it is read. `serve`
alone writes it, handing its workers their settings (sinergi.cli._hand_to_workers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from domain.cellkey import Perturbation
from schema.query_limits import QueryLimits
from sinergi.checkpoint_syslog import SyslogAddress, parse_address, presenting, trusting

if TYPE_CHECKING:
    from auth.service import FailureLimits


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class MetricsAccess(StrEnum):
    """Who may read `GET /metrics`, which names every active client and the operations each
    runs: SINERGI_METRICS_TOKEN's bearer when it is set, else anyone who reaches it in
    development or with SINERGI_METRICS=open, else nobody (404), production's default."""

    TOKEN = "token"  # noqa: S105 (a kind of access, not a secret)
    OPEN = "open"
    OFF = "off"

    @property
    def notice(self) -> str:
        """What `serve` logs at start, so an operator sees which it is."""
        return {
            MetricsAccess.TOKEN: "GET /metrics requires the bearer token SINERGI_METRICS_TOKEN",
            MetricsAccess.OPEN: "GET /metrics is open to anyone who reaches it (development, or"
            " SINERGI_METRICS=open): keep /metrics off the public reverse proxy",
            MetricsAccess.OFF: "GET /metrics answers 404: set SINERGI_METRICS_TOKEN (or"
            " SINERGI_METRICS=open on an internal network) to scrape it",
        }[self]


UNSEALED_INTERVALS = 5
"""How many seal intervals an audit entry may wait to be sealed, by default: a round seals in
milliseconds, so an entry that waited this long is not being sealed (Settings'
`audit_unsealed_seconds`)."""


MIN_RELEASE_SECONDS = 3_600
"""The shortest interval between figure releases: every release is a fresh reading of each
perturbed cell another writer changed, and readings averaged narrow a hidden part down (a
review needed about a hundred). Hourly gives a hundred in four days; daily, in three months."""


class SettingsError(ValueError):
    """A setting is missing or malformed; raised at start-up so a bad deployment fails at once."""


def default_home(xdg_data_home: str | None) -> Path:
    """The home when SINERGI_HOME is unset: `sinergi` under XDG_DATA_HOME, or under its own
    default, ~/.local/share."""
    return Path(xdg_data_home or Path.home() / ".local" / "share") / "sinergi"


MAX_WHOLE = 2_147_483_647
"""The largest whole number a setting takes: PostgreSQL's `integer`, which a setting in
milliseconds becomes (SINERGI_STATEMENT_TIMEOUT_MS, refused by the server past it, so every
connection failed), and far past any count or size meant."""

MIN_STATEMENT_TIMEOUT_MS = 100
"""The shortest SINERGI_STATEMENT_TIMEOUT_MS: at a few milliseconds the statements `serve` makes
as it starts (ensuring a signing key) timed out, and it ended in a traceback; a timeout
meant to cut off runaway queries is seconds."""

MAX_SECONDS = 31_536_000
"""The longest a setting in seconds may be: a year, past any interval or timeout meant (a monthly
figure release fits). Past it a typo's extra digits overflowed where the value went, a datetime
(a token's lifetime) or the event loop's timers (SINERGI_BODY_TIMEOUT), with a traceback."""


MIN_METRICS_TOKEN = 16
"""The fewest characters SINERGI_METRICS_TOKEN may have: it guards series naming every active
client, and `x` or a word is soon guessed by whoever reaches /metrics."""


MAX_FIGURES_CACHE_SECONDS = 60
"""The longest a process may serve a figure table again (SINERGI_FIGURES_CACHE_SECONDS): a
dashboard polls every few seconds, so a minute saves nearly all of its statements, and a table of
exact figures (the live records) lags another client's write by up to this long, and a release
made by hand in SQL, which no notification announces, is served late by as much
(schema/figure_cache.py). Only a year was refused: a typo's extra digits kept tables for days."""


def _int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int = 1,
    maximum: int = MAX_WHOLE,
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    """A setting in seconds, at most MAX_SECONDS."""
    return _int(env, name, default, minimum=minimum, maximum=MAX_SECONDS)


_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRIBUTES = ("any", "primary", "standby", "read-write", "read-only", "prefer-standby")
_URL_QUERY: dict[str, tuple[str, ...] | None] = {
    "host": None,
    "ssl": _SSL_MODES,
    "sslmode": _SSL_MODES,
    "target_session_attrs": _SESSION_ATTRIBUTES,
    "passfile": None,
    "krbsrvname": None,
    "gsslib": ("gssapi", "sspi"),
}
"""The query parameters a URL may carry, and the values each takes (None: any): those that both
of the ways Sinergi connects read, SQLAlchemy's asyncpg driver (which hands them to
`asyncpg.connect` as keywords, db.engine) and asyncpg's own connections (which read the URL as
libpq does, db.notifications). Any other failed on one of them, when first connecting, with a
traceback."""

TLS_FILE_VARIABLES = ("PGSSLROOTCERT", "PGSSLCRL", "PGSSLCERT", "PGSSLKEY")
"""The variables naming the files asyncpg loads for TLS as it connects, as libpq does."""
_URL_QUERY_INSTEAD = {
    "sslrootcert": "asyncpg reads the root certificate's path from the environment variable"
    " PGSSLROOTCERT instead, with sslmode=verify-full (or verify-ca)",
    "sslcert": "asyncpg reads the client certificate's path from the environment variable"
    " PGSSLCERT instead",
    "sslkey": "asyncpg reads the client key's path from the environment variable PGSSLKEY instead",
    "connect_timeout": "set SINERGI_DB_CONNECT_TIMEOUT (seconds, `serve`'s connections) instead",
}
"""What to use for a libpq parameter the driver refuses, named in the refusal: the certificates'
paths asyncpg reads from libpq's environment variables (both ways Sinergi connects), and the
server's connection timeout is a setting of Sinergi's own."""


def _postgresql_url(env: Mapping[str, str], name: str) -> str | None:
    """`name`'s URL, parsed as SQLAlchemy will and checked for what asyncpg refuses, so a
    malformed one fails every command at once with a line naming it; never with the URL, which
    may hold a password."""
    url = env.get(name) or None
    if url is None:
        return None
    if not url.startswith(("postgresql", "postgres")):
        raise SettingsError(f"{name} must be a PostgreSQL URL (postgresql://...)")
    from sqlalchemy.engine import make_url  # here: a command without a URL starts sooner
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ValueError:  # the port, the one part parsed as a number
        raise SettingsError(f"{name}'s port must be a number from 1 to 65535") from None
    except ArgumentError:
        raise SettingsError(f"{name} is not a URL SQLAlchemy can read") from None
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise SettingsError(f"{name}'s port must be a number from 1 to 65535, got {parsed.port}")
    for key, value in parsed.query.items():
        if key not in _URL_QUERY:
            raise SettingsError(
                f"{name} has the query parameter {key!r}, which Sinergi's driver does not take;"
                f" it takes {', '.join(_URL_QUERY)}"
                + (f": {_URL_QUERY_INSTEAD[key]}" if key in _URL_QUERY_INSTEAD else "")
            )
        allowed = _URL_QUERY[key]
        for one in (value,) if isinstance(value, str) else value:
            if allowed is not None and one not in allowed:
                raise SettingsError(
                    f"{name}'s {key} must be one of {', '.join(allowed)}, got {one!r}"
                )
    return url


def _with_password_file(
    env: Mapping[str, str], url_name: str, url: str | None, file_name: str
) -> str | None:
    """`url` with its role's password read from `file_name`'s file, a mounted secret: in the
    environment a password shows in `docker inspect` and in /proc to the container's user. The
    file holds the password alone (as the postgres image's POSTGRES_PASSWORD_FILE does, so the
    init scripts read the same file): the line ends at its end (newlines, and the carriage
    returns of a file saved on Windows) are not part of it, and what comes before them is,
    verbatim, as docker/postgres-init reads it for the role. A URL naming another password is
    refused rather than one of them silently chosen."""
    path = _path(env, file_name)
    if path is None:
        return url
    if url is None:
        raise SettingsError(f"{file_name} is set, but {url_name} is not")
    try:
        with path.open(newline="") as file:  # no \r turned into \n
            password = file.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{file_name}: cannot read {path}: {error}") from None
    if not password:
        raise SettingsError(f"{file_name}: {path} is empty")
    from sqlalchemy.engine import make_url  # here: a command without the file starts sooner

    parsed = make_url(url)
    if parsed.password is not None and parsed.password != password:
        raise SettingsError(f"{url_name} names a password other than {file_name}'s: give one")
    return parsed.set(password=password).render_as_string(hide_password=False)


def _replica_password_file(
    env: Mapping[str, str], database_url: str | None, replica_url: str | None
) -> str:
    """Which setting names the file of DATABASE_REPLICA_URL's password: its own when set, else
    DATABASE_PASSWORD_FILE for a replica URL naming the service's role (a streaming replica
    has the primary's roles and their passwords), and none for a URL naming another role,
    whose password is not the service's."""
    if env.get("DATABASE_REPLICA_PASSWORD_FILE") or replica_url is None or database_url is None:
        return "DATABASE_REPLICA_PASSWORD_FILE"
    from sqlalchemy.engine import make_url  # as in _with_password_file

    if make_url(replica_url).username == make_url(database_url).username:
        return "DATABASE_PASSWORD_FILE"
    return "DATABASE_REPLICA_PASSWORD_FILE"


def _fraction(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # nan too
        raise SettingsError(f"{name} must be at least {minimum:g}, got {value:g}")
    return value


MIN_SUPPRESSION_K = 3
"""The smallest SINERGI_SUPPRESSION_K: a cell of one business is that business, and each of two
knows its own part and so the other's (the threshold rule's usual 3)."""

MIN_CELL_KEY_MAX_NOISE = 3
"""The smallest SINERGI_CELL_KEY_MAX_NOISE: with noise of at most 1 every change of a count is
to an edge, and two derivations of a count that disagree pin it; at 3 an edge is rare
(docs/disclosure-control.md, point 3)."""

MIN_CELL_KEY_VARIANCE = 1.0
"""The smallest SINERGI_CELL_KEY_VARIANCE, half the default: a count is changed at least once in
six (more than once in five at D = 5). Near 0 every count was published exact."""

MIN_CELL_KEY_SUM_NOISE = 0.05
"""The smallest SINERGI_CELL_KEY_SUM_NOISE, half the default: a sum's noise is at least 2.5 % of
its largest contribution. Near 0 every sum of more than a few units was published exact."""


def _perturbation(env: Mapping[str, str]) -> Perturbation:
    """The cell-key parameters (docs/disclosure-control.md); assumed public, checked at start,
    and refused below the floors under which they no longer hide a business."""
    max_noise = _int(env, "SINERGI_CELL_KEY_MAX_NOISE", 5, minimum=MIN_CELL_KEY_MAX_NOISE)
    variance = _fraction(env, "SINERGI_CELL_KEY_VARIANCE", 2.0, minimum=MIN_CELL_KEY_VARIANCE)
    sum_noise = _fraction(env, "SINERGI_CELL_KEY_SUM_NOISE", 0.1, minimum=MIN_CELL_KEY_SUM_NOISE)
    try:
        return Perturbation(max_noise=max_noise, variance=variance, sum_noise=sum_noise)
    except ValueError as error:
        raise SettingsError(f"SINERGI_CELL_KEY_*: {error}") from None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None


def _syslog(env: Mapping[str, str]) -> SyslogAddress | None:
    """SINERGI_AUDIT_SYSLOG's collector, trusting SINERGI_AUDIT_SYSLOG_CA's authorities and
    presenting SINERGI_AUDIT_SYSLOG_CERT's certificate (SINERGI_AUDIT_SYSLOG_KEY's key) if set."""
    raw = (env.get("SINERGI_AUDIT_SYSLOG") or "").strip()
    tls = {
        name: (env.get(name) or "").strip()
        for name in (
            "SINERGI_AUDIT_SYSLOG_CA",
            "SINERGI_AUDIT_SYSLOG_CERT",
            "SINERGI_AUDIT_SYSLOG_KEY",
        )
    }
    ca_file, cert_file, key_file = tls.values()
    try:
        address = parse_address(raw) if raw else None
    except ValueError as problem:
        raise SettingsError(f"SINERGI_AUDIT_SYSLOG {problem}") from None
    given = [name for name, value in tls.items() if value]
    if address is None:
        if given:
            raise SettingsError(f"{given[0]} is set, but SINERGI_AUDIT_SYSLOG is not")
        return None
    if key_file and not cert_file:
        raise SettingsError("SINERGI_AUDIT_SYSLOG_KEY is set, but SINERGI_AUDIT_SYSLOG_CERT is not")
    try:
        address = trusting(address, ca_file) if ca_file else address
    except ValueError as problem:
        raise SettingsError(f"SINERGI_AUDIT_SYSLOG_CA {problem}") from None
    try:
        return presenting(address, cert_file, key_file) if cert_file else address
    except ValueError as problem:
        raise SettingsError(f"SINERGI_AUDIT_SYSLOG_CERT {problem}") from None


def _issuer(env: Mapping[str, str]) -> str:
    """SINERGI_ISSUER, as this server's tokens' `iss` has it: without a trailing '/'."""
    return (env.get("SINERGI_ISSUER") or DEFAULT_ISSUER).rstrip("/")


def _external_issuers(env: Mapping[str, str]) -> str:
    """SINERGI_EXTERNAL_ISSUERS, checked here so a malformed list fails every command at once
    (the app parses it again as it starts); auth.external is imported only when it is set.
    This server's own issuer is not one: its tokens would be verified as an SSO's, past the
    client registry, and `sinergi clients revoke` would stop them no more."""
    raw = env.get("SINERGI_EXTERNAL_ISSUERS", "")
    if raw.strip():
        from auth.external import parse_external_issuers

        try:
            issuers = parse_external_issuers(raw)
        except ValueError as error:
            raise SettingsError(str(error)) from None
        own = _issuer(env)
        if any(issuer.rstrip("/") == own for issuer in issuers):
            raise SettingsError(
                f"SINERGI_EXTERNAL_ISSUERS lists {own!r}, this server's own SINERGI_ISSUER: its"
                " tokens are verified with its own keys, against the client registry; remove it"
            )
    return raw


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
"""The words every on-or-off setting reads, in any case."""


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = (env.get(name) or "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise SettingsError(f"{name} must be true or false, got {value!r}")
    return value in _TRUE


_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]+")
"""What a client id is made of: `sng_` and URL-safe base64 (auth/clients.py), or a demo id."""


_MODE_WORDS = (
    "enforce", "enforced", "enforcing", "strict", "require", "required", "enable", "enabled",
    "active", "always", "all", "disable", "disabled", "never", "none",
)  # fmt: skip
"""Words an operator may write for a mode that `_flag` does not read: never client ids."""


def _trusted_documents(env: Mapping[str, str]) -> str:
    """SINERGI_TRUSTED_DOCUMENTS as `on`, `off` or the comma-separated client ids held to their
    documents: registered clients' ids, or SSO principals' (`ISSUER#CLIENT@ORG_KIND:JURISDICTION`
    of an issuer in SINERGI_EXTERNAL_ISSUERS, checked as a token's would be made). A word
    `_flag` reads is on or off, never a client id: `true` read as the id of no client would hold
    nobody, silently; so would an SSO principal's id no token carries. A word meant as a mode
    (`enforce`, `strict`: _MODE_WORDS) is refused by name; any other id no client is registered
    under, `serve` refuses once it can ask the database (sinergi/trusted_documents.py
    `unregistered`)."""
    raw = (env.get("SINERGI_TRUSTED_DOCUMENTS") or "").strip()
    if raw.lower() in _TRUE + _FALSE:
        return "on" if raw.lower() in _TRUE else "off"
    client_ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not client_ids or any(client_id.lower() in _TRUE + _FALSE for client_id in client_ids):
        raise SettingsError(_TRUSTED_DOCUMENTS_FORM.format(raw=raw, why=""))
    for client_id in client_ids:
        if (why := _not_a_client_id(env, client_id)) is not None:
            raise SettingsError(_TRUSTED_DOCUMENTS_FORM.format(raw=raw, why=f" ({why})"))
    return ",".join(client_ids)


_TRUSTED_DOCUMENTS_FORM = (
    "SINERGI_TRUSTED_DOCUMENTS must be on or off (true/false, yes/no, 1/0), or a comma-separated"
    " list of client ids, got {raw!r}{why}"
)


def _not_a_client_id(env: Mapping[str, str], client_id: str) -> str | None:
    """Why `client_id` is neither a registered client's id nor an SSO principal's, or None;
    auth.external is imported only for an id that may be an SSO principal's."""
    if client_id.lower() in _MODE_WORDS:
        return f"{client_id!r} is no client id but a mode's word: on or off"
    if _CLIENT_ID.fullmatch(client_id):
        return None
    if "#" not in client_id:
        return f"{client_id!r} is not a client id"
    from auth.external import external_principal, parse_external_issuers

    issuers = parse_external_issuers(_external_issuers(env))
    reason = external_principal(issuers, client_id)
    return None if reason is None else f"{client_id!r} is no SSO principal's: {reason}"


LOG_LEVELS = ("debug", "info", "warning", "error")

MAX_HEADER_BYTES = 65_536
"""The longest request head (request line and headers) `serve` reads (sinergi.http_protocol):
nginx's largest default buffers hold 32 KiB; a token of an SSO, the longest header a client
of ours sends, a few thousand bytes."""

HEAD_TIMEOUT_SECONDS = 15
"""How long `serve` waits for a request's head (sinergi.http_protocol): from a connection's
opening, or a kept-alive connection's next request's first byte, to the head's end. A client
sends a head in one write; a proxy's or a browser's idle connection is closed and opened anew
at little cost, and a connection held open sending nothing holds a descriptor for nothing."""

DEFAULT_ISSUER = "http://localhost:8000"
"""`serve`'s own address at its defaults: right only for a server on port 8000 of this host."""


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).lower()
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    replica_url: str | None = None
    read_your_writes_seconds: int = 10
    figures_cache_seconds: int = 1
    figures_release_seconds: int = 86_400
    """How old the figure release may grow before `serve` makes a new one (db/releases.py):
    each release is one more reading of every perturbed cell whose records changed."""
    home: Path = field(default_factory=lambda: default_home(os.environ.get("XDG_DATA_HOME")))
    home_set: bool = False
    """SINERGI_HOME named `home`, rather than its default under XDG_DATA_HOME: a refusal names
    the variable to shorten (sinergi.database)."""
    xdg_data_home: str | None = field(
        default_factory=lambda: os.environ.get("XDG_DATA_HOME") or None
    )
    """XDG_DATA_HOME, under which `data_home` lies; None: unset (~/.local/share)."""
    environment: Environment = Environment.PRODUCTION
    dev: bool = False
    """`serve --dev`, which alone serves the demo clients: their published secret is accepted
    (auth.clients.refused_secret). `serve` hands it to its workers as SINERGI_DEV, set from
    --dev whatever it was, so SINERGI_ENV=development (GraphiQL) lifts no refusal."""
    dev_ignored: str = ""
    """The shell's SINERGI_DEV when `serve`'s --dev overrode it (from_env's `dev`) to false
    while it said otherwise, for `serve` to name: else it would silently do nothing."""
    issuer: str = DEFAULT_ISSUER
    audience: str = "sinergi"
    max_page_size: int = 100
    default_page_size: int = 20
    token_lifetime_seconds: int = 900
    statement_timeout_ms: int = 5000
    suppression_k: int = 5
    perturbation: Perturbation = field(default_factory=Perturbation)
    db_pool_size: int = 10
    external_issuers: str = ""
    query_limits: QueryLimits = field(default_factory=QueryLimits)
    rate_limit: int = 600
    rate_limit_window_seconds: int = 60
    max_sockets_per_client: int = 4
    """WebSocket connections a client may hold open at once in one process."""
    max_header_bytes: int = MAX_HEADER_BYTES
    head_timeout_seconds: int = HEAD_TIMEOUT_SECONDS
    auth_failures_per_client: int = 10
    """Per client id from one address; per_client_total from all of them together."""
    auth_failures_per_client_total: int = 100
    auth_failures_per_address: int = 100
    """Per address for all client ids, an IPv6 address counted as its /64
    (db.queries.auth_failures.counted_address)."""
    auth_failure_window_seconds: int = 300
    tokens_per_client: int = 300
    """Tokens one client id is issued in an auth-failure window, from anywhere."""
    secret_checks: int | None = None
    """Token requests checking a client secret at once in one process; None: one per CPU."""
    trusted_documents: str = "off"
    db_connect_timeout_seconds: int = 3
    db_pool_timeout_seconds: int = 5
    body_timeout_seconds: float = 10
    """How long a /graphql request with a valid token has to send its whole body (408 past it)."""
    shutdown_grace_seconds: int = 30
    revoke_timeout_seconds: int = 5
    """How long `sinergi clients revoke` waits for every server process to confirm it."""
    prepare_wait_seconds: int = 600
    """How long a command waits for another process preparing the database (a migration) to
    finish before it gives up naming that process: one stuck for good would hang it silently."""
    log_level: str = "info"
    log_format: str = "json"
    metrics_token: str = ""
    metrics_open: bool = False
    """SINERGI_METRICS=open: `GET /metrics` without a token in production too (metrics_access)."""
    metrics_dir: str | None = None
    otlp_endpoint: str | None = None
    service_name: str = "sinergi"
    owner_url: str | None = None
    tls_files: tuple[tuple[str, str], ...] = ()
    """(variable, path) of each of libpq's TLS file variables set (TLS_FILE_VARIABLES), which
    asyncpg reads itself as it connects: a refusal to connect names the one missing."""
    audit_key_hex: str = ""
    audit_key_file: Path | None = None
    audit_checkpoints_file: Path | None = None
    audit_syslog: SyslogAddress | None = None
    """Where each checkpoint is sent as well as written to the file; None: only the file."""
    audit_seal_seconds: int = 2
    audit_unsealed_intervals: int = UNSEALED_INTERVALS
    """How many seal intervals an entry may wait to be sealed (`audit_unsealed_seconds`)."""
    unsafe_privileged_role: bool = False

    @property
    def lock_timeout_ms(self) -> int:
        """PostgreSQL `lock_timeout` on the server's connections: half the statement timeout.
        A statement held up by another's lock (a row another write holds, a migration's ACCESS
        EXCLUSIVE lock) gives up then, before its statement timeout, so that it can be told
        apart from one slow on its own work: it is answered SERVICE_UNAVAILABLE (held up,
        nothing of it applied: send it again) where a statement timeout is not."""
        return self.statement_timeout_ms // 2

    @property
    def audit_key_path(self) -> Path:
        """Where the audit key is read (and, at the default path, made on first use)."""
        return self.audit_key_file or self.home / "audit.key"

    @property
    def audit_checkpoints_path(self) -> Path:
        """The append-only file of signed checkpoints, outside PostgreSQL."""
        return self.audit_checkpoints_file or self.home / "audit-checkpoints.jsonl"

    @property
    def audit_unsealed_seconds(self) -> int:
        """How long an entry may wait to be sealed: past it, sealing has stalled (a sealing
        process that finds the lock taken logs and counts it, and `audit verify` fails), since
        an entry not sealed can be removed unnoticed."""
        return self.audit_seal_seconds * self.audit_unsealed_intervals

    @property
    def data_home(self) -> Path:
        """Where `home` is when SINERGI_HOME is unset: where a database made before, without
        it, would be (sinergi.database names one found there)."""
        return default_home(self.xdg_data_home)

    @property
    def failure_limits(self) -> FailureLimits:
        """The token endpoint's limits as set here, for every AuthService that issues tokens:
        the server's (sinergi.app) and `sinergi token`'s, which issues as it does. Imported
        here only when asked for, as auth.external is: reading settings needs no auth."""
        from auth.service import FailureLimits

        return FailureLimits(
            per_client=self.auth_failures_per_client,
            per_client_total=self.auth_failures_per_client_total,
            per_address=self.auth_failures_per_address,
            window_seconds=self.auth_failure_window_seconds,
            tokens_per_client=self.tokens_per_client,
        )

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def metrics_access(self) -> MetricsAccess:
        if self.metrics_token:
            return MetricsAccess.TOKEN
        if self.metrics_open or self.is_development:
            return MetricsAccess.OPEN
        return MetricsAccess.OFF

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dev: bool | None = None) -> Settings:
        """The settings `env` (by default the process's environment) gives, the one place
        Sinergi reads its configuration from. `dev` is `serve`'s --dev, which alone sets `dev`:
        SINERGI_DEV is then not read, so a value of the shell's own (`1`) does not stop `serve`,
        and is named in `dev_ignored` when it said otherwise."""
        env = os.environ if env is None else env
        if dev is None:
            dev = _choice(env, "SINERGI_DEV", "false", ("false", "true")) == "true"
            dev_ignored = ""
        else:
            said_dev = env.get("SINERGI_DEV") or ""
            dev_ignored = "" if dev or said_dev in ("", "false") else said_dev
        raw_environment = env.get("SINERGI_ENV", Environment.PRODUCTION.value)
        try:
            environment = Environment(raw_environment)
        except ValueError:
            raise SettingsError(
                f"SINERGI_ENV must be 'development' or 'production', got {raw_environment!r}"
            ) from None
        if "SINERGI_INTROSPECTION" in env:
            raise SettingsError(
                "SINERGI_INTROSPECTION is gone: every client's introspection now shows only what "
                "its scopes allow; to hold a client to its registered operations, use "
                "SINERGI_TRUSTED_DOCUMENTS"
            )
        database_url = _postgresql_url(env, "DATABASE_URL")
        replica_url = _postgresql_url(env, "DATABASE_REPLICA_URL")
        if replica_url is not None and database_url is None:
            raise SettingsError("DATABASE_REPLICA_URL needs DATABASE_URL (the primary it follows)")
        owner_url = _postgresql_url(env, "DATABASE_OWNER_URL")
        if owner_url is not None and database_url is None:
            raise SettingsError("DATABASE_OWNER_URL needs DATABASE_URL (the service's role)")
        replica_url = _with_password_file(
            env,
            "DATABASE_REPLICA_URL",
            replica_url,
            _replica_password_file(env, database_url, replica_url),
        )
        database_url = _with_password_file(
            env, "DATABASE_URL", database_url, "DATABASE_PASSWORD_FILE"
        )
        owner_url = _with_password_file(
            env, "DATABASE_OWNER_URL", owner_url, "DATABASE_OWNER_PASSWORD_FILE"
        )
        max_page_size = _int(env, "SINERGI_MAX_PAGE_SIZE", 100)
        metrics_token = env.get("SINERGI_METRICS_TOKEN", "")
        if metrics_token and len(metrics_token) < MIN_METRICS_TOKEN:
            raise SettingsError(
                f"SINERGI_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters,"
                f" got {len(metrics_token)}"
            )
        metrics_open = _choice(env, "SINERGI_METRICS", "off", ("off", "open")) == "open"
        if metrics_open and metrics_token:
            raise SettingsError(
                "SINERGI_METRICS=open and SINERGI_METRICS_TOKEN are both set: /metrics is either"
                " open or behind the token; unset one"
            )
        read_your_writes_seconds = _seconds(env, "SINERGI_READ_YOUR_WRITES_SECONDS", 10)
        figures_cache_seconds = _int(
            env, "SINERGI_FIGURES_CACHE_SECONDS", 1, minimum=0, maximum=MAX_FIGURES_CACHE_SECONDS
        )
        if figures_cache_seconds > read_your_writes_seconds:
            # A table cached just before a client's write would be served to it once its
            # write's note had lapsed, without the records it wrote.
            raise SettingsError(
                f"SINERGI_FIGURES_CACHE_SECONDS ({figures_cache_seconds}) must be at most"
                f" SINERGI_READ_YOUR_WRITES_SECONDS ({read_your_writes_seconds})"
            )
        return cls(
            database_url=database_url,
            replica_url=replica_url,
            read_your_writes_seconds=read_your_writes_seconds,
            figures_cache_seconds=figures_cache_seconds,
            figures_release_seconds=_seconds(
                env, "SINERGI_FIGURES_RELEASE_SECONDS", 86_400, minimum=MIN_RELEASE_SECONDS
            ),
            home=(
                Path(env["SINERGI_HOME"])
                if env.get("SINERGI_HOME")
                else default_home(env.get("XDG_DATA_HOME"))
            ),
            home_set=bool(env.get("SINERGI_HOME")),
            xdg_data_home=env.get("XDG_DATA_HOME") or None,
            environment=environment,
            dev=dev,
            dev_ignored=dev_ignored,
            issuer=_issuer(env),
            audience=env.get("SINERGI_AUDIENCE") or "sinergi",
            max_page_size=max_page_size,
            default_page_size=min(_int(env, "SINERGI_DEFAULT_PAGE_SIZE", 20), max_page_size),
            token_lifetime_seconds=_seconds(env, "SINERGI_TOKEN_LIFETIME", 900, minimum=30),
            statement_timeout_ms=_int(
                env, "SINERGI_STATEMENT_TIMEOUT_MS", 5000, minimum=MIN_STATEMENT_TIMEOUT_MS
            ),
            suppression_k=_int(env, "SINERGI_SUPPRESSION_K", 5, minimum=MIN_SUPPRESSION_K),
            perturbation=_perturbation(env),
            db_pool_size=_int(env, "SINERGI_DB_POOL_SIZE", 10),
            external_issuers=_external_issuers(env),
            rate_limit=_int(env, "SINERGI_RATE_LIMIT", 600),
            rate_limit_window_seconds=_seconds(env, "SINERGI_RATE_LIMIT_WINDOW", 60),
            max_sockets_per_client=_int(env, "SINERGI_MAX_SOCKETS_PER_CLIENT", 4),
            max_header_bytes=_int(env, "SINERGI_MAX_HEADER_BYTES", MAX_HEADER_BYTES),
            head_timeout_seconds=_seconds(env, "SINERGI_HEAD_TIMEOUT", HEAD_TIMEOUT_SECONDS),
            auth_failures_per_client=_int(env, "SINERGI_AUTH_FAILURES_PER_CLIENT", 10),
            auth_failures_per_client_total=_int(env, "SINERGI_AUTH_FAILURES_PER_CLIENT_TOTAL", 100),
            auth_failures_per_address=_int(env, "SINERGI_AUTH_FAILURES_PER_ADDRESS", 100),
            auth_failure_window_seconds=_seconds(env, "SINERGI_AUTH_FAILURE_WINDOW", 300),
            tokens_per_client=_int(env, "SINERGI_TOKENS_PER_CLIENT", 300),
            secret_checks=_int(env, "SINERGI_SECRET_CHECKS", 0) or None,
            trusted_documents=_trusted_documents(env),
            db_connect_timeout_seconds=_seconds(env, "SINERGI_DB_CONNECT_TIMEOUT", 3),
            db_pool_timeout_seconds=_seconds(env, "SINERGI_DB_POOL_TIMEOUT", 5),
            body_timeout_seconds=_seconds(env, "SINERGI_BODY_TIMEOUT", 10),
            shutdown_grace_seconds=_seconds(env, "SINERGI_SHUTDOWN_GRACE", 30),
            revoke_timeout_seconds=_seconds(env, "SINERGI_REVOKE_TIMEOUT", 5),
            prepare_wait_seconds=_seconds(env, "SINERGI_PREPARE_WAIT", 600),
            log_level=_choice(env, "SINERGI_LOG_LEVEL", "info", LOG_LEVELS),
            log_format=_choice(env, "SINERGI_LOG_FORMAT", "json", ("json", "text")),
            metrics_token=metrics_token,
            metrics_open=metrics_open,
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
            service_name=env.get("OTEL_SERVICE_NAME") or "sinergi",
            owner_url=owner_url,
            tls_files=tuple(
                (name, path) for name in TLS_FILE_VARIABLES if (path := env.get(name, ""))
            ),
            audit_key_hex=env.get("SINERGI_AUDIT_KEY", "").strip(),
            audit_key_file=_path(env, "SINERGI_AUDIT_KEY_FILE"),
            audit_checkpoints_file=_path(env, "SINERGI_AUDIT_CHECKPOINTS"),
            audit_syslog=_syslog(env),
            audit_seal_seconds=_seconds(env, "SINERGI_AUDIT_SEAL_SECONDS", 2),
            audit_unsealed_intervals=_int(
                env, "SINERGI_AUDIT_UNSEALED_INTERVALS", UNSEALED_INTERVALS
            ),
            unsafe_privileged_role=_flag(env, "SINERGI_UNSAFE_PRIVILEGED_ROLE"),
            query_limits=QueryLimits(
                max_depth=_int(env, "SINERGI_MAX_DEPTH", 12),
                max_aliases=_int(env, "SINERGI_MAX_ALIASES", 30),
                max_tokens=_int(env, "SINERGI_MAX_TOKENS", 5_000),
                max_fields=_int(env, "SINERGI_MAX_FIELDS", 200),
                max_cost=_int(env, "SINERGI_MAX_COST", 50_000),
                max_document_bytes=_int(env, "SINERGI_MAX_DOCUMENT_BYTES", 100_000),
                max_batch=_int(env, "SINERGI_MAX_BATCH", 10),
                max_body_bytes=_int(env, "SINERGI_MAX_BODY_BYTES", 2_000_000),
                max_response_bytes=_int(env, "SINERGI_MAX_RESPONSE_BYTES", 5_000_000),
                default_page_size=min(_int(env, "SINERGI_DEFAULT_PAGE_SIZE", 20), max_page_size),
                max_page_size=max_page_size,
            ),
        )
