"""The audit key comes from outside the database, and a bad one stops the start."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import pwd
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from db.seals import (
    BadCheckpoint,
    Checkpoint,
    Unreadable,
    read_checkpoint,
    read_entry,
    row_mac,
)
from sinergi import audit_key, checkpoint_file
from sinergi.settings import Settings, SettingsError
from tests.support.cli import sinergi
from tests.support.databases import as_service


def test_the_default_key_is_made_once_under_sinergi_home_readable_by_its_owner_only(
    tmp_path: Path, fresh_url: str
) -> None:
    """Made for a trail nothing sealed yet (tests/test_audit_key_trail.py: never for another)."""
    settings = Settings(home=tmp_path)
    first = asyncio.run(audit_key.for_database(settings, fresh_url, check=False))
    assert len(first) == 32
    assert asyncio.run(audit_key.for_database(settings, fresh_url, check=True)) == first
    assert audit_key.load(settings) == first
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == ["audit.key"]


def test_a_key_from_the_environment_or_a_mounted_secret_wins(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("ab" * 32 + "\n")
    secret.chmod(0o600)
    from_file = Settings.from_env(
        {"SINERGI_HOME": str(tmp_path), "SINERGI_AUDIT_KEY_FILE": str(secret)}
    )
    assert audit_key.load(from_file) == bytes.fromhex("ab" * 32)
    from_env = Settings.from_env({"SINERGI_HOME": str(tmp_path), "SINERGI_AUDIT_KEY": "cd" * 40})
    assert audit_key.load(from_env) == bytes.fromhex("cd" * 40)
    assert not (tmp_path / "audit.key").exists(), "nothing made when a key is given"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SINERGI_AUDIT_KEY": "not hex"}, "in hex"),
        ({"SINERGI_AUDIT_KEY": "ab" * 16}, "at least 32 bytes"),
        ({"SINERGI_AUDIT_KEY_FILE": "/nonexistent/audit.key"}, "cannot read the audit key"),
    ],
)
def test_a_bad_or_missing_key_is_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        audit_key.load(Settings.from_env({"SINERGI_HOME": str(tmp_path), **env}))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_may_read_is_refused(
    migrated_url: str, tmp_path: Path, mode: int
) -> None:
    """Whoever reads the key can forge the trail's seals: a key file open to its group or others
    stops the command (exit 2), as `sinergi sync` refuses a copy open to them, naming the
    chmod rather than tightening it unasked."""
    key = tmp_path / "audit.key"
    audit_key.make(key)
    key.chmod(mode)
    env = {"SINERGI_AUDIT_KEY_FILE": str(key), "DATABASE_OWNER_URL": migrated_url}
    code, out, err = sinergi(as_service(migrated_url), "audit", "verify", "--stopped", env=env)
    assert (code, out) == (2, "")
    assert err == (
        f"sinergi: the audit key file {key} is open to its group or others (mode {mode:o}), who"
        f" could forge the audit trail's seals with it: restrict it (chmod 600 {key})\n"
    )
    key.chmod(0o600)
    code, out, err = sinergi(as_service(migrated_url), "audit", "verify", "--stopped", env=env)
    assert "open to its group or others" not in out + err


def _kubernetes_secret(directory: Path, mode: int, owner: int) -> Path:
    """A secret volume as the kubelet lays it out: the file behind two symbolic links
    (audit.key -> ..data/audit.key, ..data -> a timestamped directory), swapped on rotation."""
    timestamped = directory / "..2026_12_06_00_00_00.000000001"
    timestamped.mkdir(parents=True)
    key = timestamped / "audit.key"
    audit_key.make(key)
    key.chmod(mode)
    os.chown(key, owner, -1)
    (directory / "..data").symlink_to(timestamped.name)
    (directory / "audit.key").symlink_to("..data/audit.key")
    return directory / "audit.key"


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of root's needs root to make")
@pytest.mark.parametrize(
    ("mode", "layout"), [(0o444, "file"), (0o644, "kubernetes"), (0o440, "kubernetes")]
)
def test_a_secret_mounted_by_the_platform_is_used_whatever_its_mode(
    fresh_url: str,
    tmp_path: Path,
    mode: int,
    layout: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kubernetes mounts a secret root-owned 0644 (0440 with fsGroup), Swarm root-owned 0444, on
    a read-only volume: not the service's to restrict (it runs as uid 10001 in the image), so
    used, and named at `serve`'s start. Its mode is read through the kubelet's symbolic links."""
    if layout == "kubernetes":
        key = _kubernetes_secret(tmp_path / "secrets", mode, 0)
    else:
        key = tmp_path / "audit.key"
        audit_key.make(key)
        key.chmod(mode)
    env = {"SINERGI_AUDIT_KEY_FILE": str(key)}
    settings = Settings.from_env({"SINERGI_HOME": str(tmp_path / "home"), **env})
    with pytest.raises(SettingsError, match="is open to its group or others"):
        audit_key.load(settings)  # root's own file, to a service running as root
    monkeypatch.setattr(os, "geteuid", lambda: 10001)  # the image's user, not root
    with caplog.at_level(logging.WARNING, logger="sinergi.audit"):
        served = asyncio.run(audit_key.for_database(settings, fresh_url, check=True))
    assert served == audit_key.load(settings)
    assert f"the audit key file {key} is open to its group or others (mode {mode:o})" in (
        caplog.text
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_file_of_another_ordinary_account_open_to_others_is_refused(
    migrated_url: str, tmp_path: Path
) -> None:
    """That account could read the key, or replace it, and forge the trail's seals: only root's
    files, a platform's mounts, are exempt."""
    key = _kubernetes_secret(tmp_path / "secrets", 0o644, pwd.getpwnam("nobody").pw_uid)
    env = {"SINERGI_AUDIT_KEY_FILE": str(key)}
    code, out, err = sinergi(as_service(migrated_url), "audit", "verify", "--stopped", env=env)
    assert (code, out) == (2, "")
    assert f"the audit key file {key} is open to its group or others (mode 644)" in err


def test_an_own_key_file_behind_symbolic_links_is_held_to_its_own_mode(
    migrated_url: str, tmp_path: Path
) -> None:
    """The links (0777 themselves) are followed: the file's own mode and owner decide."""
    key = _kubernetes_secret(tmp_path / "secrets", 0o644, os.geteuid())
    env = {"SINERGI_AUDIT_KEY_FILE": str(key)}
    code, out, err = sinergi(as_service(migrated_url), "audit", "verify", "--stopped", env=env)
    assert (code, out) == (2, "")
    assert f"the audit key file {key} is open to its group or others (mode 644)" in err


def test_an_owner_url_without_the_service_url_is_refused() -> None:
    with pytest.raises(SettingsError, match="DATABASE_OWNER_URL needs DATABASE_URL"):
        Settings.from_env({"DATABASE_OWNER_URL": "postgresql://owner@db/sinergi"})


@dataclass(frozen=True)
class Entry:
    seq: int = 7
    hash: str = "h"
    at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    client_id: str = "c"
    entry: object = field(default_factory=lambda: {"a": 1})
    subjects: tuple[str, ...] = ("1", "2")


def _seal(entry: Entry | None = None, key: bytes = bytes(32), previous: str = "prev") -> str:
    return row_mac(key, previous, entry or Entry())


def test_seals_depend_on_every_field_the_key_and_the_seal_before() -> None:
    seal = _seal()
    assert _seal() == seal
    assert _seal(Entry(at=datetime(2026, 1, 1, 7, tzinfo=UTC).astimezone())) == _seal(
        Entry(at=datetime(2026, 1, 1, 7, tzinfo=UTC))
    ), "the same moment in another zone"
    others = [
        _seal(Entry(seq=8)),
        _seal(Entry(hash="x")),
        _seal(Entry(at=datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC))),
        _seal(Entry(client_id="d")),
        _seal(Entry(entry={"a": 2})),
        _seal(Entry(subjects=("1,2",))),  # the database's own hash joins subjects with commas
        _seal(previous="other"),
        _seal(key=bytes([1]) * 32),
    ]
    assert seal not in others
    assert len(set(others)) == len(others)


def test_a_seal_is_the_hmac_of_the_entrys_fields_as_one_json_array() -> None:
    """The seal's encoding, pinned: every trail sealed so far verifies only while it holds."""
    message = b'["entry","prev",7,"h","2026-01-01T00:00:00+00:00","c",{"a":1},["1","2"]]'
    assert _seal() == hmac.new(bytes(32), message, hashlib.sha256).hexdigest()


def test_an_unreadable_entry_is_sealed_over_its_stored_text_apart_from_readable_ones() -> None:
    """Sealed past (db/queries/audit_seals.py), it still breaks every seal after it if changed;
    no readable entry, not even the same text as a JSON string, seals alike."""
    stored = '{"n": 1e400}'
    unreadable = read_entry(stored)
    assert isinstance(unreadable, Unreadable)
    assert unreadable.text == stored
    seal = _seal(Entry(entry=unreadable))
    assert seal == _seal(Entry(entry=read_entry(stored)))
    assert seal not in {
        _seal(Entry(entry=read_entry('{"n": 2e400}'))),
        _seal(Entry(entry=stored)),
        _seal(Entry(entry={"n": 1e300})),
    }


def test_a_checkpoint_reads_back_only_with_its_key_and_unaltered(tmp_path: Path) -> None:
    key = bytes(32)
    checkpoint = Checkpoint("sinergi", 12, "h", "m", datetime(2026, 1, 1, tzinfo=UTC))
    path = tmp_path / "checkpoints.jsonl"
    checkpoint_file.append(path, checkpoint.signed_line(key))
    checkpoint_file.append(path, checkpoint.signed_line(key).replace('"seq":12', '"seq":13'))
    read = checkpoint_file.read(path, key)
    assert read.checkpoints == [checkpoint]
    assert read.problems == [f"{path}:2: its signature does not match this key"]
    with pytest.raises(BadCheckpoint, match="signature"):
        read_checkpoint(checkpoint.signed_line(key), bytes([1]) * 32)
    with pytest.raises(BadCheckpoint, match="malformed"):
        read_checkpoint("{not json", key)
