"""The roles' passwords from files (DATABASE_PASSWORD_FILE, DATABASE_OWNER_PASSWORD_FILE), the
secrets docker/compose.yaml mounts, so that no password sits in a container's environment,
which `docker inspect` shows. The test servers trust their connections, so these tests read
the URLs Sinergi would connect with rather than have PostgreSQL check a password."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from sinergi.settings import Settings, SettingsError
from tests.support.cli import sinergi

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


def test_a_url_naming_the_files_password_reads_alike(tmp_path: Path) -> None:
    """`serve` hands its workers the service's URL, password and all, beside the same file."""
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
        ({"DATABASE_URL": SERVICE, "DATABASE_PASSWORD_FILE": "empty"}, "is empty"),
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
