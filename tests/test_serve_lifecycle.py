"""`sinergi serve` as operators stop it: SIGTERM (systemd, Docker, `kill`), SIGINT (Ctrl-C) and a
crash of an earlier run all leave no embedded PostgreSQL behind; and without `--dev` it refuses to
start while any active client still has the published demo secret, or as a privileged role."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from auth import clients
from db.engine import async_url
from sinergi.demo_mode import DEMO_CLIENTS, register_demo_clients
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.served import free_port, wait_until_answering


@pytest.fixture
def home() -> Iterator[Path]:
    """Outside pytest's tmp_path, whose mode 0700 would lock out the unprivileged user the
    embedded server runs as when tests run as root."""
    path = Path(tempfile.mkdtemp(prefix="sinergi-lifecycle-"))
    yield path
    _stop_leftover(path)
    shutil.rmtree(path, ignore_errors=True)


def _stop_leftover(home: Path) -> None:
    pid = _postmaster(home)
    if pid is not None and psutil.pid_exists(pid):
        os.kill(pid, signal.SIGTERM)


def _postmaster(home: Path) -> int | None:
    pid_file = home / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def _embedded(home: Path) -> dict[str, str]:
    """The environment of a command run on the embedded server under `home`."""
    env = {**os.environ, "SINERGI_HOME": str(home), "SINERGI_LOG_LEVEL": "warning"}
    for name in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "SINERGI_ENV"):
        env.pop(name, None)
    return env


def _serve(home: Path, *options: str) -> subprocess.Popen[bytes]:
    """`sinergi serve OPTIONS…` on the embedded server under `home`, once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sinergi.cli", "serve", *options, "--port", str(port)],
        env=_embedded(home),
        stdout=subprocess.DEVNULL,
    )
    wait_until_answering(process, f"http://127.0.0.1:{port}/readyz")
    return process


def _gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_sigterm_sigint_and_a_crash_leave_no_postgresql_behind(home: Path) -> None:
    crashed = _serve(home)
    postgres = _postmaster(home)
    assert postgres is not None
    assert psutil.pid_exists(postgres)
    crashed.kill()  # no handler runs: the server stays up, its handle noted as still in use
    crashed.wait(30)
    assert not _gone(postgres, seconds=2)

    for stop in (signal.SIGTERM, signal.SIGINT):
        process = _serve(home)
        postgres = _postmaster(home)
        assert postgres is not None
        process.send_signal(stop)
        assert process.wait(60) == 0, f"{stop.name}: a clean stop exits 0"
        assert _gone(postgres), f"{stop.name} left PostgreSQL {postgres} running"


@pytest.mark.parametrize("environment", [None, "development"])
def test_serve_without_dev_refuses_a_demo_secret_and_a_privileged_role(
    fresh_url: str, home: Path, environment: str | None
) -> None:
    """SINERGI_ENV=development turns GraphiQL on; only `--dev` lets the demo clients serve."""

    async def register() -> None:
        engine = create_async_engine(async_url(fresh_url))
        await register_demo_clients(engine)
        await engine.dispose()

    env = {**os.environ, "DATABASE_URL": fresh_url, "SINERGI_HOME": str(home)}
    env.pop("SINERGI_ENV", None)
    if environment is not None:
        env["SINERGI_ENV"] = environment
    sinergi = [sys.executable, "-m", "sinergi.cli"]
    subprocess.run([*sinergi, "migrate"], env=env, check=True, timeout=120)  # reference data
    asyncio.run(register())
    refused = subprocess.run(
        [*sinergi, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    for client_id, *_ in DEMO_CLIENTS:
        assert f"sinergi clients revoke {client_id}" in refused.stderr
    assert "published demo secret" in refused.stderr
    assert "rotate" not in refused.stderr  # a rotated demo client is refused all the same

    rotated, *revoked = [client_id for client_id, *_ in DEMO_CLIENTS]

    async def rotate_and_revoke() -> None:
        engine = create_async_engine(async_url(fresh_url))
        async with engine.begin() as connection:
            assert await clients.rotate_secret(connection, rotated) is not None
            for client_id in revoked[1:]:
                assert await clients.revoke(connection, client_id)
        await engine.dispose()

    asyncio.run(rotate_and_revoke())
    still = subprocess.run(
        [*sinergi, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert still.returncode == 2
    assert still.stderr.count("sinergi clients revoke") == 1
    assert f"sinergi clients revoke {revoked[0]}" in still.stderr

    async def revoke_the_last() -> None:
        engine = create_async_engine(async_url(fresh_url))
        async with engine.begin() as connection:
            assert await clients.revoke(connection, revoked[0])
        await engine.dispose()

    asyncio.run(revoke_the_last())
    privileged = subprocess.run(
        [*sinergi, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert privileged.returncode == 2  # DATABASE_URL is the owner's: it owns the audit trail
    assert "refusing to serve" in privileged.stderr
    assert "--unsafe-privileged-role" in privileged.stderr


def test_an_accepted_privileged_role_is_logged_and_probes_log_no_migration_lines(
    fresh_url: str, home: Path
) -> None:
    """`--unsafe-privileged-role` lets the owner serve, with a warning naming what it holds
    rather than silently; and a `/readyz` probe, which reads the migration state, logs nothing
    at info (Alembic's "Context impl PostgresqlImpl." came with every probe)."""
    env = {**os.environ, "DATABASE_URL": fresh_url, "SINERGI_HOME": str(home)}
    env |= {"SINERGI_LOG_LEVEL": "info", "SINERGI_LOG_FORMAT": "text"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "SINERGI_ENV", "SINERGI_UNSAFE_PRIVILEGED_ROLE"):
        env.pop(name, None)
    port = free_port()
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--unsafe-privileged-role"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        readyz = f"http://127.0.0.1:{port}/readyz"
        wait_until_answering(process, readyz)
        for _ in range(2):  # three probes in all, none logged
            assert httpx.get(readyz, timeout=2).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        logged, _ = process.communicate(timeout=60)
    (warning,) = [line for line in logged.splitlines() if "privileged role" in line]
    assert "WARNING sinergi.auth" in warning
    assert "owns the audit trail" in warning
    assert "alembic" not in logged


def test_dev_serve_says_why_a_database_url_database_has_no_population(
    fresh_url: str, home: Path
) -> None:
    """With DATABASE_URL set, `serve --dev` loads no demo population (the database may hold real
    records): on one holding no MSMEs it says so, naming the command that loads it, rather than
    leave the README's examples to come back empty unexplained."""
    env = {**os.environ, "DATABASE_URL": fresh_url, "SINERGI_HOME": str(home)}
    env |= {"SINERGI_LOG_LEVEL": "warning", "SINERGI_LOG_FORMAT": "text"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "SINERGI_ENV"):
        env.pop(name, None)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sinergi.cli", "serve", "--dev", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_answering(process, f"http://127.0.0.1:{port}/readyz")
    finally:
        process.send_signal(signal.SIGTERM)
        logged, _ = process.communicate(timeout=60)
    (warning,) = [line for line in logged.splitlines() if "holds no MSMEs" in line]
    assert "WARNING sinergi.demo" in warning
    assert "DATABASE_URL is set" in warning
    assert "`sinergi demo-data`" in warning


async def _register_real_client(url: str) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            await clients.create(
                connection,
                client_id="dinas-7781",
                name="Dinas Koperasi (nyata)",
                org_kind="province",
                jurisdiction="62",
                scopes=None,
                purpose="pembinaan UMKM",
            )
    finally:
        await engine.dispose()


async def _client_ids(url: str) -> list[str]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return [client.client_id for client in await clients.all_clients(connection)]
    finally:
        await engine.dispose()


def test_dev_serve_refuses_a_database_serving_real_organisations(
    fresh_url: str, home: Path
) -> None:
    """`serve --dev` registered the demo clients, demo-province-62 with pii:read among them, under
    the published secret in whatever database DATABASE_URL named, one of real organisations too:
    it refuses there as `demo-data` does, registering nothing."""
    assert sinergi(fresh_url, "migrate")[0] == 0  # the regions a client's jurisdiction names
    asyncio.run(_register_real_client(fresh_url))
    env = {**os.environ, "DATABASE_URL": fresh_url, "SINERGI_HOME": str(home)}
    env |= {"SINERGI_LOG_LEVEL": "warning"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "SINERGI_ENV"):
        env.pop(name, None)
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--dev", "--port", str(free_port())]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, said = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # it served: the refusal is missing
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    assert process.returncode == 2
    refusal = said.decode().strip()
    assert "\n" not in refusal, refusal
    assert refusal.startswith("sinergi serve --dev: refusing: the database serves clients")
    assert "besides the demo's ('dinas-7781')" in refusal
    assert "unset DATABASE_URL" in refusal
    assert asyncio.run(_client_ids(fresh_url)) == ["dinas-7781"]


def test_dev_serve_of_the_embedded_database_serves_beside_the_clients_made_there(
    home: Path,
) -> None:
    """The embedded database is the demo's own: a developer who tried the README's `sinergi
    clients create` there could no longer `./dev serve`, told to unset a DATABASE_URL never
    set. Only a DATABASE_URL database is refused for serving clients besides the demo's."""
    create = ["clients", "create", "--name", "Bappenas", "--org-kind", "ministry"]
    create += ["--jurisdiction", "ID", "--purpose", "national planning figures"]
    subprocess.run(
        [sys.executable, "-m", "sinergi.cli", *create],
        env=_embedded(home),
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=120,
    )
    process = _serve(home, "--dev")
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0


def test_serve_deletes_only_an_earlier_runs_metric_files_and_only_when_it_starts(
    fresh_url: str, home: Path
) -> None:
    """PROMETHEUS_MULTIPROC_DIR is the operator's: `serve` deleted every *.db in it, even when
    it then refused to start. It deletes prometheus_client's own files alone, and only once
    past its refusals."""
    metrics = home / "metrics"
    metrics.mkdir()
    stale = ["counter_12.db", "gauge_livesum_12.db", "histogram_34.db", "summary_34.db"]
    kept = ["other.db", "counter_notes.db", "report.txt"]
    for name in stale + kept:
        (metrics / name).write_text("")
    env = {**os.environ, "DATABASE_URL": fresh_url, "SINERGI_HOME": str(home)}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(metrics), "SINERGI_LOG_LEVEL": "warning"}
    for name in ("SINERGI_ENV", "SINERGI_UNSAFE_PRIVILEGED_ROLE"):
        env.pop(name, None)
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(free_port())]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2  # DATABASE_URL is the owner's
    assert "refusing to serve" in refused.stderr
    assert sorted(path.name for path in metrics.iterdir()) == sorted(stale + kept)

    port = free_port()
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--unsafe-privileged-role"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        wait_until_answering(process, f"http://127.0.0.1:{port}/readyz")
        left = {path.name for path in metrics.iterdir()}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert set(kept) <= left
    assert not set(stale) & left


def test_serve_keeps_the_operators_metrics_directory_to_the_service(home: Path) -> None:
    """The metric files name every active client: an operator's PROMETHEUS_MULTIPROC_DIR that
    `serve` makes is the service's alone, and one open to others already is named in a warning,
    not tightened (its mode may be deliberate)."""
    blocked = home / "blocked"
    blocked.write_text("")  # a checkpoint file under it cannot be made: `serve` stops there
    env = _embedded(home) | {"SINERGI_AUDIT_CHECKPOINTS": str(blocked / "checkpoints")}
    made, shared = home / "made" / "metrics", home / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    warned = []
    for metrics in (made, shared):
        refused = subprocess.run(
            [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(free_port())],
            env=env | {"PROMETHEUS_MULTIPROC_DIR": str(metrics)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2, refused.stderr
        warned.append([line for line in refused.stderr.splitlines() if "warning" in line])
    assert made.stat().st_mode & 0o777 == 0o700
    assert warned == [
        [],
        [
            f"sinergi: warning: PROMETHEUS_MULTIPROC_DIR {shared} is open to its group or others"
            f" (mode 755), and its metric files name every active client: restrict it"
            f" (chmod 700 {shared})"
        ],
    ]
    assert shared.stat().st_mode & 0o777 == 0o755


def test_serve_refuses_a_trusted_documents_list_naming_no_registered_client(
    fresh_url: str, home: Path
) -> None:
    """A client id in SINERGI_TRUSTED_DOCUMENTS that no client is registered under (a typo, a
    word meant as a mode) held nobody, and the client meant went unheld, without a word: `serve`
    refuses it in one line naming it. An SSO principal's id, registered nowhere, is not named;
    a list of registered clients serves."""
    assert sinergi(fresh_url, "migrate")[0] == 0  # the regions a client's jurisdiction names
    asyncio.run(_register_real_client(fresh_url))
    sso = "https://sso.example.go.id/realms/sinergi"
    issuers = f'[{{"issuer": "{sso}", "jwks_url": "{sso}/certs", "audience": "sinergi"}}]'
    env = {**os.environ, "DATABASE_URL": as_service(fresh_url), "SINERGI_HOME": str(home)}
    env |= {"SINERGI_LOG_LEVEL": "warning", "SINERGI_EXTERNAL_ISSUERS": issuers}
    for name in ("DATABASE_OWNER_URL", "PROMETHEUS_MULTIPROC_DIR", "SINERGI_ENV"):
        env.pop(name, None)
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(free_port())]
    held = f"dinas-7781,dinas-7718,{sso}#portal@bumd:62,sng_k3yT7pQ2xW9z"
    refused = subprocess.run(
        command,
        env={**env, "SINERGI_TRUSTED_DOCUMENTS": held},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        "sinergi: refusing to serve: SINERGI_TRUSTED_DOCUMENTS names 'dinas-7718',"
        " 'sng_k3yT7pQ2xW9z', which no client is registered under (sinergi clients list): each"
        " would hold nobody, and the client meant would run any document; correct the list\n"
    )

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(port)],
        env={**env, "SINERGI_TRUSTED_DOCUMENTS": f"dinas-7781,{sso}#portal@bumd:62"},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until_answering(process, f"http://127.0.0.1:{port}/readyz")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


def test_serve_removes_the_metrics_directory_it_made_and_only_that(
    fresh_url: str, home: Path
) -> None:
    """With several workers and no PROMETHEUS_MULTIPROC_DIR, `serve` makes a directory for
    their metric files, whose series name client ids: it outlived the server, one more under
    /tmp for every start. The operator's own directory stays, as theirs."""
    temporary, own = home / "tmp", home / "metrics"
    temporary.mkdir()
    env = {**os.environ, "DATABASE_URL": fresh_url, "SINERGI_HOME": str(home)}
    env |= {"TMPDIR": str(temporary), "SINERGI_LOG_LEVEL": "warning"}
    for name in ("SINERGI_ENV", "SINERGI_UNSAFE_PRIVILEGED_ROLE", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    for extra in ({}, {"PROMETHEUS_MULTIPROC_DIR": str(own)}):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(port), "--workers",
             "2", "--unsafe-privileged-role"],
            env=env | extra,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_answering(process, f"http://127.0.0.1:{port}/readyz")
            made = list(temporary.glob("sinergi-metrics-*"))
            assert len(made) == (0 if extra else 1)
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        assert list(temporary.glob("sinergi-metrics-*")) == []
    assert own.is_dir()
