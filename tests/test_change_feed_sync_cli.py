"""`sinergi sync` guarding what it handles: the copy holds owners' personal data (NIK, name,
phone), so it is made readable by its owner only and an existing one open to others, another
user's or a symbolic link is refused, as is one in a directory others may write to;
the client's secret and the records travel only over https, or plain http to this machine.
Each refusal comes before the secret is read or the server is asked (no server runs here: a
URL that gets past the checks finds a closed port and exits 1)."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sinergi.cli import main

SECRET = "sinergi-demo-secret"


def sinergi_sync(copy: Path, url: str, secret_file: Path) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, under the usual umask (022: new files world-readable)."""
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "sync", str(copy), "--url", url,
         "--client-id", "demo-province-62", "--secret-file", str(secret_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        umask=0o022,
    )  # fmt: skip


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: a connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "http://sinergi.example",
        "http://10.0.0.5:8000",
        "http://[fe80::1]:8000",
        "http://127.0.0.1.sinergi.example",
        "http://localhost.sinergi.example:8000",
        "ftp://127.0.0.1/",
    ],
)
def test_plain_http_beyond_this_machine_is_refused_before_the_secret_is_read(
    tmp_path: Path, url: str
) -> None:
    copy = tmp_path / "copy.sqlite"
    result = sinergi_sync(copy, url, tmp_path / "no-such-secret.txt")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert url in result.stderr
    if url.startswith("http:"):
        assert "use https" in result.stderr
    assert not copy.exists()


def test_a_refused_url_is_shown_without_its_password(tmp_path: Path) -> None:
    result = sinergi_sync(
        tmp_path / "copy.sqlite", "http://someone:never-shown@sinergi.example", tmp_path / "s"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("sinergi sync: http://sinergi.example: plain http ")
    assert "never-shown" not in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "[::ffff:127.0.0.1]"])
def test_plain_http_to_this_machine_is_accepted_and_a_new_copy_is_its_owners_only(
    tmp_path: Path, secret_file: Path, closed_port: int, host: str
) -> None:
    copy = tmp_path / "copy.sqlite"
    result = sinergi_sync(copy, f"http://{host}:{closed_port}", secret_file)
    assert result.returncode == 1, result.stdout + result.stderr  # past the checks: no server
    assert "refused" in result.stderr.lower()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620], ids=lambda mode: f"{mode:o}")
def test_an_existing_copy_open_to_others_is_refused_and_left_as_it_is(
    tmp_path: Path, secret_file: Path, closed_port: int, mode: int
) -> None:
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(b"")
    copy.chmod(mode)
    result = sinergi_sync(copy, f"http://127.0.0.1:{closed_port}", secret_file)
    assert result.returncode == 2, result.stdout + result.stderr  # 1 would mean it was used
    message = " ".join(result.stderr.split())
    assert f"(mode {mode:o})" in message
    assert "chmod 600" in message
    assert stat.S_IMODE(copy.stat().st_mode) == mode
    assert copy.read_bytes() == b""


def test_an_existing_private_copy_is_used(
    tmp_path: Path, secret_file: Path, closed_port: int
) -> None:
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(b"")
    copy.chmod(0o600)
    result = sinergi_sync(copy, f"http://[::1]:{closed_port}", secret_file)
    assert result.returncode == 1, result.stdout + result.stderr  # past the checks: no server
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert os.path.getsize(copy) > 0  # SQLite made its tables in it


@pytest.mark.parametrize("planted", ["another user's", "symlink", "dangling symlink"])
def test_a_copy_planted_by_someone_else_is_refused(
    tmp_path: Path, secret_file: Path, closed_port: int, planted: str
) -> None:
    """A 0600 file owned by another user, or a link to where its maker chose, passed the mode
    check and received owners' NIKs: their mode says nothing of who reads them."""
    copy = tmp_path / "copy.sqlite"
    target = tmp_path / "theirs.sqlite"
    if planted == "another user's":
        if os.geteuid() != 0:
            pytest.skip("giving a file to another user takes root")
        copy.write_bytes(b"")
        copy.chmod(0o600)
        os.chown(copy, 65534, 65534)  # nobody
    else:
        if planted == "symlink":
            target.write_bytes(b"")
            target.chmod(0o600)
        copy.symlink_to(target)
    result = sinergi_sync(copy, f"http://127.0.0.1:{closed_port}", secret_file)
    assert result.returncode == 2, result.stdout + result.stderr  # 1 would mean it was used
    expected = (
        "belongs to another user (uid 65534)"
        if planted == "another user's"
        else ("is a symbolic link")
    )
    assert result.stderr.startswith(f"sinergi sync: {copy} {expected}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert not target.exists() or target.read_bytes() == b""
    if planted == "another user's":
        assert copy.read_bytes() == b""


@pytest.mark.parametrize(
    ("mode", "owner"), [(0o1777, None), (0o770, None), (0o755, "another user's")]
)
def test_a_copy_in_a_directory_others_may_write_to_is_refused(
    tmp_path: Path, secret_file: Path, closed_port: int, mode: int, owner: str | None
) -> None:
    """SQLite keeps the copy's journal beside it (`COPY-journal`), opening one already there
    rather than refusing it, and writes into it, before each page, the copy's pages about to
    change: owners' NIKs synced earlier. In a directory such as /tmp, another user who planted
    that file and held it open read them (an ops review did, 106 NIKs in one run)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    if owner is not None:
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user takes root")
        os.chown(shared, 65534, 65534)  # nobody
    copy = shared / "copy.sqlite"
    result = sinergi_sync(copy, f"http://127.0.0.1:{closed_port}", secret_file)
    assert result.returncode == 2, result.stdout + result.stderr  # 1 would mean it was used
    assert result.stderr.startswith(f"sinergi sync: the copy's directory {shared} "), result.stderr
    assert result.stderr.count("\n") == 1
    assert list(shared.iterdir()) == []


def test_a_copy_sqlite_cannot_use_is_one_line(
    tmp_path: Path, secret_file: Path, closed_port: int
) -> None:
    """A file of another program's with a `cursors` table of its own (or a full disk, a
    read-only file) ended in a sqlite3 traceback once the copy was open."""
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(copy) as db:
        db.execute("CREATE TABLE cursors (kind TEXT PRIMARY KEY, position INTEGER)")
    db.close()
    copy.chmod(0o600)
    result = sinergi_sync(copy, f"http://127.0.0.1:{closed_port}", secret_file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        f"sinergi sync: cannot read or write the copy {copy}: no such column: cursor;"
        " nothing of this page applied\n"
    )


def test_a_directory_given_as_the_copy_is_refused_as_no_file(
    tmp_path: Path, secret_file: Path, closed_port: int
) -> None:
    """A directory was told it was open to its group or others, and to `chmod 600` it."""
    copy = tmp_path / "copies"
    copy.mkdir()
    result = sinergi_sync(copy, f"http://127.0.0.1:{closed_port}", secret_file)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"sinergi sync: {copy} is not a file: give the copy's file path\n"
    assert list(copy.iterdir()) == []


@pytest.mark.parametrize("kinds", [",", "", " , "])
def test_kinds_naming_no_feed_are_refused(
    tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str], kinds: str
) -> None:
    """`--kinds ","` exited 0 having synced nothing, as if the copy were up to date."""
    copy = tmp_path / "copy.sqlite"
    status = main(
        ["sync", str(copy), "--url", "https://sinergi.example", "--client-id", "c",
         "--secret-file", str(secret_file), "--kinds", kinds]
    )  # fmt: skip
    assert status == 2
    assert capsys.readouterr().err == (
        "sinergi sync: --kinds names no feed: give one or more of msme, cooperative,"
        " participation, guarantee\n"
    )
    assert not copy.exists()
