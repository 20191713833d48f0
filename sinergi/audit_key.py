"""The audit key: the secret behind the seals and checkpoints, which the database never holds.

`SINERGI_AUDIT_KEY` (hex) or the file `SINERGI_AUDIT_KEY_FILE` (a mounted secret holding the hex),
else `$SINERGI_HOME/audit.key`, made on first use. Every process and instance serving one
database must hold the same key: `audit verify` checks every seal with it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from db.seals import KEY_BYTES
from sinergi.settings import Settings, SettingsError


def _decoded(raw: str, source: str) -> bytes:
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        raise SettingsError(f"{source} must hold the audit key in hex") from None
    if len(key) < KEY_BYTES:
        raise SettingsError(f"{source}: the audit key needs at least {KEY_BYTES} bytes")
    return key


def _create(path: Path) -> None:
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


def load(settings: Settings) -> bytes:
    if settings.audit_key_hex:
        return _decoded(settings.audit_key_hex, "SINERGI_AUDIT_KEY")
    path = settings.audit_key_path
    if settings.audit_key_file is None and not path.exists():
        _create(path)
    try:
        return _decoded(path.read_text(encoding="ascii"), str(path))
    except OSError as error:
        raise SettingsError(f"cannot read the audit key: {error}") from None
