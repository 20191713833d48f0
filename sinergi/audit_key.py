"""The audit key: the secret behind the seals and checkpoints, which the database never holds.

`SINERGI_AUDIT_KEY` (hex) or the file `SINERGI_AUDIT_KEY_FILE` (a mounted secret holding the hex),
else `$SINERGI_HOME/audit.key`. Every process and instance serving one database must hold the
same key: `audit verify` checks every seal with it. So `$SINERGI_HOME/audit.key` is made only
for a trail nothing has sealed yet (a new database): made beside a trail another key sealed, it
failed every seal, sealing stopped and `audit verify` cried tampering. `serve` also checks that
its key made the trail's first seal before it serves anything, and its key's fingerprint: a new
database stays unsealed for a while, during which a second instance with a SINERGI_HOME of its
own made a key of its own and served beside the first, each refusing the other's change-feed
cursors. The first `serve` records the fingerprint (migration 0044; of a sealed trail, only with
the key that made its first seal), and every `serve` refuses a key that does not reproduce it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

from db.engine import one_connection
from db.queries import audit_key_fingerprint
from db.queries.audit_seals import first_seal
from db.seals import KEY_BYTES, key_fingerprint
from sinergi.settings import Settings, SettingsError

log = logging.getLogger("sinergi.audit")


class NoAuditKey(SettingsError):
    """No key where one was expected, and the trail was sealed: the key is elsewhere."""


class WrongAuditKey(SettingsError):
    """The key did not make the trail's seals."""


def _decoded(raw: str, source: str) -> bytes:
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        raise SettingsError(f"{source} must hold the audit key in hex") from None
    if len(key) < KEY_BYTES:
        raise SettingsError(f"{source}: the audit key needs at least {KEY_BYTES} bytes")
    return key


def make(path: Path) -> None:
    """Written whole, then linked into place: a process reading it never sees half a key, and
    of two processes making it at once, the second keeps the first one's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")
    try:
        os.write(descriptor, secrets.token_hex(KEY_BYTES).encode() + b"\n")
        os.fsync(descriptor)
        os.close(descriptor)
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        os.unlink(draft)


def _source(settings: Settings) -> str:
    return "SINERGI_AUDIT_KEY" if settings.audit_key_hex else str(settings.audit_key_path)


def load(settings: Settings) -> bytes:
    """The key the settings name, which must be there: `for_database` makes it, where it may."""
    if settings.audit_key_hex:
        return _decoded(settings.audit_key_hex, "SINERGI_AUDIT_KEY")
    path = settings.audit_key_path
    try:
        found = path.stat()  # a mounted secret's, through its symlinks (Kubernetes: ..data/)
        key = path.read_text(encoding="ascii")
    except OSError as error:
        raise SettingsError(f"cannot read the audit key: {error}") from None
    mode = stat.S_IMODE(found.st_mode)
    if mode & 0o077 and (found.st_uid == os.geteuid() or found.st_uid != 0):
        # As `sinergi sync` refuses a copy open to others: refused, not tightened, since whether
        # the key's exposure so far matters (anyone who read it can forge seals) is the
        # operator's call, and a chmod would break a deliberate mode silently. Exempt only a
        # platform's secret mount, which is root's and read-only to a service not running as
        # root (Kubernetes' 0644 or 0440 with fsGroup, Swarm's 0444), and which `serve` names
        # at start (for_database): a file of another ordinary account is refused, since that
        # account could read or replace the key.
        raise SettingsError(
            f"the audit key file {path} is open to its group or others (mode {mode:o}), who "
            f"could forge the audit trail's seals with it: restrict it (chmod 600 {path})"
        )
    return _decoded(key, str(path))


async def for_database(settings: Settings, url: str, *, check: bool) -> bytes:
    """The key for the database at `url`, made under SINERGI_HOME if none is there and nothing
    was sealed nor a key's fingerprint recorded yet; refused (NoAuditKey) if none is there and
    either was. `check` (`serve`): refused too (WrongAuditKey) unless the key made the trail's
    first seal, one MAC over one row read, and reproduces the recorded fingerprint, which the
    first `serve` records; so a server never runs with a key whose every sealing round is
    refused, nor beside another instance holding another key."""
    async with one_connection(url, statement_timeout_ms=10_000, transaction=True) as connection:
        sealed = await first_seal(connection)
        path = settings.audit_key_path
        if not settings.audit_key_hex and settings.audit_key_file is None and not path.exists():
            _refuse_a_new_key(path, sealed.newest, await audit_key_fingerprint.recorded(connection))
            make(path)
        key = load(settings)
        if not check:
            return key
        _name_an_open_mount(settings)
        fingerprint = key_fingerprint(key, await audit_key_fingerprint.trail(connection))
        recorded = await audit_key_fingerprint.recorded(connection)
        if recorded is None:
            # A trail sealed before fingerprints were recorded names its key by its first seal.
            if sealed.made_with(key) is False:
                raise WrongAuditKey(
                    f"the audit key does not match this database's seals: the key from "
                    f"{_source(settings)} did not make the seal of entry 1. Serve with the key "
                    "that sealed this trail (SINERGI_AUDIT_KEY_FILE, SINERGI_AUDIT_KEY or "
                    "SINERGI_HOME); `sinergi audit verify` with it checks the trail"
                )
            recorded = await audit_key_fingerprint.record(connection, fingerprint)
        elif recorded == fingerprint and sealed.made_with(key) is False:
            # The recorded fingerprint, which the service's role cannot change, names this key:
            # the first seal was forged (the service's role may write one). Serving on keeps
            # an insider from stopping every instance with it; sealing stops at it, and says so.
            log.error(
                "the seal of audit entry 1 was not made by this database's audit key: forged;"
                " run `sinergi audit verify`"
            )
    if recorded != fingerprint:
        raise WrongAuditKey(
            f"the audit key is not this database's: the key from {_source(settings)} does not "
            "match the fingerprint of the key its first server recorded. Every instance serving "
            "one database needs the same key: serve with that one (SINERGI_AUDIT_KEY_FILE, "
            "SINERGI_AUDIT_KEY or SINERGI_HOME)"
        )
    return key


async def of_its_servers(settings: Settings, url: str) -> bytes:
    """The key the database's servers sign with, for a command writing to its trail beside them
    (`sinergi import`). Never made nor recorded here, as `for_database` would before the first
    `serve`: a key the import made in the operator's SINERGI_HOME, its fingerprint recorded,
    would have every later `serve` with the service's own key refused for good. So refused
    (NoAuditKey) until a server recorded its key's fingerprint, and (WrongAuditKey) unless the
    key given is that one."""
    async with one_connection(url, statement_timeout_ms=10_000, transaction=True) as connection:
        recorded = await audit_key_fingerprint.recorded(connection)
        if recorded is None:
            raise NoAuditKey(
                "no server of this database has recorded its audit key yet, and the import "
                "signs its audit entry with that key: start `sinergi serve` once first"
            )
        key = load(settings)
        fingerprint = key_fingerprint(key, await audit_key_fingerprint.trail(connection))
    if recorded != fingerprint:
        raise WrongAuditKey(
            f"the audit key is not this database's: the key from {_source(settings)} does not "
            "match the fingerprint of the key its first server recorded. Give the service's key "
            "(SINERGI_AUDIT_KEY_FILE, SINERGI_AUDIT_KEY or SINERGI_HOME)"
        )
    return key


def _refuse_a_new_key(path: Path, sealed_through: int, fingerprint: str | None) -> None:
    """NoAuditKey unless a new key may be made: nothing sealed, no key's fingerprint recorded."""
    if sealed_through:
        raise NoAuditKey(
            f"no audit key at {path}, yet this database's audit trail is sealed through "
            f"entry {sealed_through} ({sealed_through} seals) by a key kept elsewhere: a new "
            "key would fail every seal. Point SINERGI_AUDIT_KEY_FILE at the key that sealed "
            "it (or SINERGI_HOME at the directory whose audit.key it is), or set "
            "SINERGI_AUDIT_KEY"
        )
    if fingerprint is not None:
        raise NoAuditKey(
            f"no audit key at {path}, yet a server of this database recorded the fingerprint "
            "of its key, kept elsewhere: a new key would seal nothing another instance could "
            "check. Point SINERGI_AUDIT_KEY_FILE at that key (or SINERGI_HOME at the directory "
            "whose audit.key it is), or set SINERGI_AUDIT_KEY"
        )


def _name_an_open_mount(settings: Settings) -> None:
    """Logs, at `serve`'s start, a key file its group or others may read that `load` accepted
    because another user (the platform mounting the secret) owns it: not the running user's to
    restrict, yet whoever else can read it could forge seals, which the operator should know."""
    if settings.audit_key_hex:
        return
    mode = stat.S_IMODE(settings.audit_key_path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "the audit key file %s is open to its group or others (mode %o), who could forge the"
            " audit trail's seals with it: it belongs to another user (a mounted secret), so it"
            " is used; make sure only this service's user can read it in this container",
            settings.audit_key_path,
            mode,
        )
