"""Sealed cursors: a position handed to a client that it can neither read, compare with another,
nor make up.

A change feed's position is its place in one log that numbers every change in the country, so a
position in clear told a regency or a guarantor how much the rest of the register changed since
its last page, owners' personal data and rival guarantors' business included, however little of
it the feed showed. Sealed, a cursor is random bytes to its holder: a fresh nonce each time, so
two cursors of one position differ, and authenticated, so a forged or altered one fails to open.

AES-256-GCM-SIV (RFC 8452): a nonce drawn twice (a page hands out a thousand cursors, and a busy
server draws billions over a key's life) reveals only that two cursors hold the same position,
where GCM would give away its authentication key. The feed's name is associated data, so a
cursor of another feed does not open. The key is derived from the audit key (sinergi/audit_key.py),
which every process and instance serving one database holds, so a cursor stays valid across
restarts, workers and replicas; HKDF under a label of its own, so it is no other use's key.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LABEL = b"sinergi change-feed cursor v1"
"""What the key is derived for: another use of the audit key derives under another label."""
NONCE_BYTES = 12
_POSITION = struct.Struct(">QQ")
"""The sealed numbers: as wide whatever they hold, so no cursor's length tells them apart."""
SEALED_BYTES = NONCE_BYTES + _POSITION.size + 16  # and the tag


class CursorSeal:
    """Seals and opens the positions of cursors under a key derived from the audit key."""

    __slots__ = ("_cipher",)

    def __init__(self, audit_key: bytes) -> None:
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=LABEL).derive(audit_key)
        self._cipher = AESGCMSIV(key)

    def seal(self, feed: str, position: int, horizon: int) -> str:
        """`position` and `horizon` (each from 0 to 2**63 - 1) as a cursor of `feed`."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, _POSITION.pack(position, horizon), feed.encode())
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, feed: str, cursor: str) -> tuple[int, int] | None:
        """The position and horizon `cursor` holds, or None unless this key sealed it for
        `feed`, unaltered."""
        try:
            raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"==")
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return None
        if len(raw) != SEALED_BYTES:
            return None
        try:
            opened = self._cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], feed.encode())
        except InvalidTag:
            return None
        position, horizon = _POSITION.unpack(opened)
        return position, horizon
