"""The roles' passwords from files (DATABASE_PASSWORD_FILE, DATABASE_OWNER_PASSWORD_FILE,
DATABASE_REPLICA_PASSWORD_FILE), the secrets docker/compose.yaml mounts, so that no password
sits in a container's environment, which `docker inspect` shows. The test servers trust their
connections, so these tests read the URLs Sinergi would connect with rather than have
PostgreSQL check a password."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from sqlalchemy.engine import make_url

from sinergi.settings import Settings, SettingsError
from tests.support.cli import sinergi
from tests.support.databases import TEST_PASSWORD, as_service
from tests.support.served import free_port, wait_until_answering

SERVICE = "postgresql://sinergi_service@db:5432/sinergi?sslmode=require"
OWNER = "postgresql://sinergi_owner@db:5432/sinergi"
REPLICA = "postgresql://sinergi_service@replica:5432/sinergi"


def _secret(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def test_each_roles_password_is_read_from_its_file(tmp_path: Path) -> None:
    service = "s3rvice:p@ss/w%rd"  # not URL-safe: the URL quotes it
    settings = Settings.from_env(
        {
            "DATABASE_URL": SERVICE,
            "DATABASE_REPLICA_URL": REPLICA,
            "DATABASE_OWNER_URL": OWNER,
            "DATABASE_PASSWORD_FILE": _secret(tmp_path, "service", service + "\n"),
            "DATABASE_OWNER_PASSWORD_FILE": _secret(tmp_path, "owner", "owner-pw"),
        }
    )
    assert settings.database_url is not None
    assert settings.replica_url is not None
    assert settings.owner_url is not None
    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host) == ("sinergi_service", service, "db")
    assert url.query == {"sslmode": "require"}
    assert make_url(settings.replica_url).password == service
    assert make_url(settings.owner_url).password == "owner-pw"


def test_a_replica_of_another_role_has_its_own_password(tmp_path: Path) -> None:
    """A replica URL naming a role other than the service's took the service's password from
    DATABASE_PASSWORD_FILE, and was refused when it named its own."""
    service_file = _secret(tmp_path, "service", "service-pw\n")
    reader = "postgresql://sinergi_reader@replica:5432/sinergi"
    env = {"DATABASE_URL": SERVICE, "DATABASE_PASSWORD_FILE": service_file}
    own = Settings.from_env(
        {
            **env,
            "DATABASE_REPLICA_URL": reader,
            "DATABASE_REPLICA_PASSWORD_FILE": _secret(tmp_path, "reader", "reader-pw\n"),
        }
    )
    assert own.replica_url is not None
    assert make_url(own.replica_url).password == "reader-pw"
    named = make_url(reader).set(password="in-url").render_as_string(hide_password=False)
    in_url = Settings.from_env({**env, "DATABASE_REPLICA_URL": named}).replica_url
    assert in_url is not None
    assert make_url(in_url).password == "in-url"  # not the service's, nor refused
    bare = Settings.from_env({**env, "DATABASE_REPLICA_URL": reader}).replica_url
    assert bare is not None
    assert make_url(bare).password is None


def test_a_url_naming_the_files_password_reads_alike(tmp_path: Path) -> None:
    """A URL naming the password the file holds is the same URL, not a conflict."""
    env = {"DATABASE_PASSWORD_FILE": _secret(tmp_path, "service", "pw\n")}
    given = Settings.from_env({"DATABASE_URL": SERVICE, **env}).database_url
    assert given is not None
    assert Settings.from_env({"DATABASE_URL": given, **env}).database_url == given


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_PASSWORD_FILE": "service"},
            "DATABASE_PASSWORD_FILE is set, but DATABASE_URL is not",
        ),
        (
            {"DATABASE_URL": SERVICE, "DATABASE_OWNER_PASSWORD_FILE": "owner"},
            "DATABASE_OWNER_PASSWORD_FILE is set, but DATABASE_OWNER_URL is not",
        ),
        (
            {"DATABASE_URL": SERVICE, "DATABASE_PASSWORD_FILE": "missing"},
            "DATABASE_PASSWORD_FILE: cannot read ",
        ),
        (
            {"DATABASE_URL": SERVICE, "DATABASE_REPLICA_PASSWORD_FILE": "service"},
            "DATABASE_REPLICA_PASSWORD_FILE is set, but DATABASE_REPLICA_URL is not",
        ),
        ({"DATABASE_URL": SERVICE, "DATABASE_PASSWORD_FILE": "empty"}, "is empty"),
        (
            {
                "DATABASE_URL": SERVICE,
                "DATABASE_REPLICA_URL": "postgresql://sinergi_reader:other@replica/sinergi",
                "DATABASE_REPLICA_PASSWORD_FILE": "service",
            },
            "DATABASE_REPLICA_URL names a password other than DATABASE_REPLICA_PASSWORD_FILE's",
        ),
        (
            {
                "DATABASE_URL": "postgresql://sinergi_service:other@db/sinergi",
                "DATABASE_PASSWORD_FILE": "service",
            },
            "DATABASE_URL names a password other than DATABASE_PASSWORD_FILE's",
        ),
    ],
)
def test_a_password_file_that_cannot_serve_is_refused(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    _secret(tmp_path, "service", "pw")
    _secret(tmp_path, "owner", "pw")
    _secret(tmp_path, "empty", "\n")
    resolved = {
        name: str(tmp_path / value) if name.endswith("_FILE") else value
        for name, value in env.items()
    }
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(resolved)


def test_a_command_connects_with_urls_that_name_no_password(fresh_url: str, tmp_path: Path) -> None:
    """As compose's `migrate` runs: both URLs bare, each password in its file."""
    bare = make_url(fresh_url).set(password=None).render_as_string(hide_password=False)
    password = make_url(fresh_url).password
    assert password is not None
    env = {
        "DATABASE_PASSWORD_FILE": _secret(tmp_path, "service", password + "\n"),
        "DATABASE_OWNER_URL": bare,
        "DATABASE_OWNER_PASSWORD_FILE": _secret(tmp_path, "owner", password + "\n"),
    }
    code, out, err = sinergi(bare, "clients", "list", env=env)
    assert code == 0, err
    env["DATABASE_OWNER_URL"] = make_url(bare).set(password="other").render_as_string(False)
    code, out, err = sinergi(bare, "clients", "list", env=env)
    assert (code, out) == (2, ""), err
    assert err == (
        "sinergi: DATABASE_OWNER_URL names a password other than"
        " DATABASE_OWNER_PASSWORD_FILE's: give one\n"
    )


def test_serve_hands_its_workers_no_password_and_nothing_of_the_owner(fresh_url: str) -> None:
    """Each worker reads the settings again, from an environment /proc/PID/environ shows to
    whoever may read it: the service's URL there stays bare (the worker reads the password from
    DATABASE_PASSWORD_FILE itself), and the owner's URL and password file, which serving never
    needs, are not there at all."""
    home = Path(tempfile.mkdtemp(prefix="sinergi-workers-"))
    secrets = Path(tempfile.mkdtemp(prefix="sinergi-secrets-"))
    # URL.set(password=None) leaves the password as it was.
    bare_owner = make_url(fresh_url)._replace(password=None)
    bare_service = make_url(as_service(fresh_url))._replace(password=None)
    env = {
        **os.environ,
        "SINERGI_HOME": str(home),
        "SINERGI_LOG_LEVEL": "warning",
        "DATABASE_URL": bare_service.render_as_string(hide_password=False),
        "DATABASE_PASSWORD_FILE": _secret(secrets, "service", TEST_PASSWORD + "\n"),
        "DATABASE_OWNER_URL": bare_owner.render_as_string(hide_password=False),
        "DATABASE_OWNER_PASSWORD_FILE": _secret(secrets, "owner", TEST_PASSWORD + "\n"),
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "SINERGI_ENV"):
        env.pop(name, None)
    port = free_port()
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--workers", "2", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until_answering(process, f"http://127.0.0.1:{port}/readyz")
        workers = [
            child
            for child in psutil.Process(process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        assert len(workers) == 2, [child.cmdline() for child in workers]
        for worker in workers:
            environ = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
            given = dict(entry.decode().split("=", 1) for entry in environ if b"=" in entry)
            assert make_url(given["DATABASE_URL"]).password is None
            assert not [value for value in given.values() if f":{TEST_PASSWORD}@" in value]
            assert "DATABASE_OWNER_URL" not in given
            assert "DATABASE_OWNER_PASSWORD_FILE" not in given
            assert given["DATABASE_PASSWORD_FILE"] == env["DATABASE_PASSWORD_FILE"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(secrets, ignore_errors=True)
