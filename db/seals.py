"""Keyed seals over the audit chain and signed checkpoints of its head: pure functions.

The database chains entries with an unkeyed SHA-256 (migration 0002), which anyone who can
rewrite the table can recompute with `audit_log_hash()`. A seal is an HMAC-SHA256, under a key
the database never holds, over the entry's own fields and the seal before it, so a rewritten,
removed or inserted entry breaks every seal from there on; a checkpoint, kept outside
PostgreSQL, signs the newest seal, so removing the newest entries (and their seals) shows too.

Fields are encoded as one JSON array (orjson, sorted keys): unlike the database's `|`-joined
text, no two different entries encode alike.

An entry orjson cannot read (`Unreadable`: a number beyond a double, nesting past 1,024 levels,
which the chain trigger refuses since migration 0024) is sealed over the text PostgreSQL stores,
tagged apart from every readable entry's seal: sealing goes on past it, and `audit verify`
names it.

A seal vouches that an entry is as it was when sealed, not who wrote it: the service's role may
insert entries, and the sealer sealed whatever the table held. So the service also signs each
entry it writes (`entry_mac`, migration 0051): an HMAC under a key derived from the audit key
(`entry_key`) of its client id, entry, subjects and a random nonce, which whoever holds only the
database's credentials cannot make. The nonce tells a copy of a genuine entry from it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

KEY_BYTES = 32


def _mac(key: bytes, fields: Sequence[Any]) -> str:
    message = orjson.dumps(list(fields), option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


_HEX_MAC = re.compile(r"[0-9a-f]{64}")
"""What every MAC, seal and signature made here looks like: a SHA-256 hexdigest."""


def same_mac(ours: str, theirs: object) -> bool:
    """Whether `theirs`, a MAC as read from the database or a checkpoint line (written by
    whoever could write there), is `ours`, one made here. Anything other than 64 lowercase hex
    digits is no MAC made here: False, as for any other mismatch. `hmac.compare_digest` raises
    TypeError on a str beyond ASCII, so one such value, planted with the service's database
    credentials, stopped every sealing round and crashed `audit verify` without naming it."""
    if not isinstance(theirs, str) or _HEX_MAC.fullmatch(theirs) is None:
        return False
    return hmac.compare_digest(ours.encode(), theirs.encode())


class Sealable(Protocol):
    """The fields of an audit entry its seal covers: a row of `audit_log`, as sealing and
    verifying both read it."""

    @property
    def seq(self) -> int: ...
    @property
    def hash(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def client_id(self) -> str: ...
    @property
    def entry(self) -> object:
        """As `read_entry` reads the stored text: the JSON value, or `Unreadable`."""
        ...

    @property
    def subjects(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An entry PostgreSQL stores that orjson cannot read, as stored, and why not."""

    text: str
    reason: str


def read_entry(stored: str) -> object:
    """An entry from the text PostgreSQL stores: its JSON value, or `Unreadable`. Read here
    rather than by the driver's JSON codec, which fails the whole statement on one such entry,
    so sealing, verifying and the custodian's reads stopped at it for good."""
    try:
        return orjson.loads(stored)
    except orjson.JSONDecodeError as error:
        return Unreadable(stored, str(error))


def row_mac(key: bytes, previous: str, row: Sealable) -> str:
    """The seal of entry `row.seq`, chained to `previous` (the seal of the entry before; "" for
    the first). The one place a seal is computed, so sealing and verifying cannot drift apart."""
    moment = row.at.astimezone(UTC).isoformat()
    entry = row.entry
    if isinstance(entry, Unreadable):
        fields = [row.seq, row.hash, moment, row.client_id, entry.text, list(row.subjects)]
        return _mac(key, ["unreadable entry", previous, *fields])
    fields = [row.seq, row.hash, moment, row.client_id, entry, list(row.subjects)]
    return _mac(key, ["entry", previous, *fields])


ENTRY_KEY_LABEL = b"sinergi audit entry mac v1"
"""What the entry key is derived for: the seals use the audit key itself, each MAC tagged."""
NONCE_BYTES = 16


def derived_key(key: bytes, label: bytes) -> bytes:
    """A key for one use of the audit key `key`, named by `label`: an HMAC under it, so no key
    derived under one label is the audit key or any other label's, and none tells anything of
    them. The entry MACs' key here, and the tokens' seals' (auth/tokens.py)."""
    return hmac.new(key, label, hashlib.sha256).digest()


def entry_key(key: bytes) -> bytes:
    """The key of the entries' MACs, derived from the audit key under a label of its own (as
    domain/cursor_seal.py derives the cursors'): an entry MAC is no seal of anything, under any
    key a seal is made with. Derived once per writer, sealer or verification, not per entry."""
    return derived_key(key, ENTRY_KEY_LABEL)


def new_nonce() -> str:
    """A random nonce for one entry, in hex: no two entries the service writes share one, so a
    copy of a genuine entry, MAC and all, is told from it."""
    return secrets.token_hex(NONCE_BYTES)


class UnsignableEntry(ValueError):
    """An entry whose MAC would not verify once stored: jsonb does not give it back as written."""


def _signable(value: object) -> None:
    """UnsignableEntry unless `value` holds strings, integers, booleans, nulls, lists and objects
    keyed by strings alone, which jsonb gives back as they went in. A float does not come back
    as written (`1e16` as `10000000000000000`, `-0.0` as `0.0`), nor a key that is no string
    (`1` and `"1"` become one key): its MAC would fail, read as tampering. Refused as it is
    signed, so a change that writes one fails in the tests, never as a false alarm."""
    if not _plain(value):
        _refuse(value)


def _plain(value: object) -> bool:
    """Whether `value` holds nothing `_signable` refuses: its walk without the paths it names
    (`entry.fields.x`), which took three times as long as the check itself on every entry,
    signed as each request is audited and again as it is sealed."""
    if type(value) is str:
        return True
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not _plain(item):
                return False
        return True
    if isinstance(value, list | tuple):
        return all(map(_plain, value))
    return not isinstance(value, float)


def _refuse(value: object, where: str = "entry") -> None:
    """UnsignableEntry naming where in `value` the first thing `_signable` refuses is."""
    if isinstance(value, float):
        raise UnsignableEntry(
            f"audit entry refused: {where} is a float ({value!r}), which jsonb does not give "
            "back as written, so its MAC would not verify: write an integer or a string"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsignableEntry(
                    f"audit entry refused: {where} has a key that is no string ({key!r}), which "
                    "jsonb does not give back as written, so its MAC would not verify"
                )
            _refuse(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse(item, f"{where}[{index}]")


def entry_mac(
    key: bytes, nonce: str, client_id: str, entry: object, subjects: Sequence[str]
) -> str:
    """The service's MAC of an entry it writes (`key`: `entry_key`'s), over its content as it
    is read back: `entry` as `read_entry` reads PostgreSQL's text of it (object keys sorted
    here), and `subjects` as stored. One HMAC-SHA256 an entry. UnsignableEntry for an entry
    jsonb would not give back as it is here (`_signable`)."""
    _signable(entry)
    fields = ["entry mac", nonce, client_id, entry, list(subjects)]
    # Keys are strings by now; the option writes a str subclass's (an enum's) as its value.
    message = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class Signed(Sealable, Protocol):
    """A row of `audit_log` with the MAC and nonce the service wrote it with (migration 0051)."""

    @property
    def entry_mac(self) -> str | None: ...
    @property
    def entry_nonce(self) -> str | None: ...


MAC_MISSING = (
    "carries no MAC: not written by the service (inserted with the database's credentials)"
)
MAC_MISMATCH = (
    "does not match its MAC: not written by the service as it stands (inserted or altered with"
    " the database's credentials)"
)


def unsigned(key: bytes, macs_from: int, row: Signed) -> str | None:
    """Why `row` is not an entry the service wrote, by its MAC (`key`: `entry_key`'s); None
    when it is, or when it was written before entries carried MACs (below `macs_from`, the
    first that must: `audit_entry_macs`). The one place an entry's MAC is checked, for sealing
    and verifying alike. An unreadable entry is not judged here: the service never wrote one
    (the chain trigger refuses it), and it is named as unreadable."""
    if row.entry_mac is None or row.entry_nonce is None:
        return MAC_MISSING if row.seq >= macs_from else None
    if isinstance(row.entry, Unreadable):
        return MAC_MISMATCH
    try:
        expected = entry_mac(key, row.entry_nonce, row.client_id, row.entry, row.subjects)
    except UnsignableEntry:  # the service signs no such entry
        return MAC_MISMATCH
    return None if same_mac(expected, row.entry_mac) else MAC_MISMATCH


def key_fingerprint(key: bytes, trail: str) -> str:
    """Which key seals trail `trail` (its id, migration 0041), as the database may record it
    (migration 0044): an HMAC under the key, which tells nothing of it, tagged apart from every
    seal and bound to the trail, so a restored copy of it keeps its key's fingerprint."""
    return _mac(key, ["audit key fingerprint", trail])


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain of trail `trail` (database `database`) was sealed through entry `seq` at `at`.

    `trail` is the id the trail keeps in its database (migration 0041), so a copy of it under
    another name is still recognised; a checkpoint written before it has none, and names only
    its database. The signature covers the id, tagged apart from a checkpoint without one."""

    database: str
    seq: int
    hash: str
    mac: str
    at: datetime
    trail: str | None = None

    def _fields(self) -> list[Any]:
        moment = self.at.astimezone(UTC).isoformat()
        fields = [self.database, self.seq, self.hash, self.mac, moment]
        if self.trail is None:
            return ["checkpoint", *fields]
        return ["trail checkpoint", self.trail, *fields]

    def applies_to(self, trail: str | None, database: str) -> bool:
        """Whether this checkpoint is of the trail `trail` (None: the database keeps no id),
        kept in database `database`."""
        return self.trail == trail if self.trail is not None else self.database == database

    def contradicts(self, trail: str | None, database: str) -> bool:
        """Whether this checkpoint names database `database` but a trail other than `trail`,
        the id that database keeps (None: it keeps none). Not set aside as another trail's:
        the owner can change or remove the id, and would, to set aside every checkpoint naming
        it while the older ones, naming only the database, still apply to a trail cut short."""
        return self.trail is not None and self.trail != trail and self.database == database

    def signed_line(self, key: bytes) -> str:
        """One JSON line, signed: what the checkpoint file holds."""
        record = {
            **({} if self.trail is None else {"trail": self.trail}),
            "database": self.database,
            "seq": self.seq,
            "hash": self.hash,
            "mac": self.mac,
            "at": self.at.astimezone(UTC).isoformat(),
            "signature": _mac(key, self._fields()),
        }
        return orjson.dumps(record).decode() + "\n"


class BadCheckpoint(ValueError):
    """A line of the checkpoint file that is malformed or not signed with this key."""


def read_checkpoint(line: str, key: bytes) -> Checkpoint:
    """The checkpoint `line` holds, signed with `key`; BadCheckpoint for anything else, so the
    reader reports the line and reads on: whoever can write to the file or the collector can
    write any line there."""
    try:
        record = orjson.loads(line)
        checkpoint = Checkpoint(
            database=str(record["database"]),
            seq=int(record["seq"]),
            hash=str(record["hash"]),
            mac=str(record["mac"]),
            at=datetime.fromisoformat(record["at"]),
            trail=None if record.get("trail") is None else str(record["trail"]),
        )
        signature = record["signature"]
        # Encoding the fields may fail too: a seq beyond 64 bits, a time UTC cannot hold.
        expected = _mac(key, checkpoint._fields())
    except (
        orjson.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
        OverflowError,
        AttributeError,
    ) as error:
        raise BadCheckpoint(f"malformed: {error}") from None
    if not same_mac(expected, signature):
        raise BadCheckpoint("its signature does not match this key")
    return checkpoint
