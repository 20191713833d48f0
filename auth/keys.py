"""Token-signing keys: ES256, stored in PostgreSQL so every process signs and verifies alike.

Rotation adds a new signing key and retires the old one; a retired key stays published and
keeps verifying the tokens it signed before until they have expired, so rotation never logs
anyone out (auth/keyring.py says which it accepts, and how each process learns of a rotation).

One key signs: the newest usable one not retired. Any other key not retired (one added beside it
by hand, or that a rotation missed) counts as retired when the signing key was made: a key
nobody retired must not verify for ever. A row that does not import, or whose private half does
not match its public one, is skipped, and named by `Keys.unusable` for the caller to log: one bad
row must neither stop tokens being issued nor keep a rotation from reaching the processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import ColumnElement, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.tokens import LEEWAY_SECONDS
from db.errors import is_lock_timeout
from db.models import SIGNING_KEYS

ALGORITHM = "ES256"
CURVE = "P-256"
CHANNEL = "sinergi_keys"
"""NOTIFYed, with the new key's kid, as a rotation commits (auth/keyring.py)."""
ERASED: dict[str, Any] = {}
"""A retired key's `private_jwk`."""
LOCK_WAIT_SECONDS = 5
"""The longest a rotation waits for the table: whoever holds it longer is named instead
(TableHeld), so the operator can end them rather than wait on a lock in silence."""
CONFLICTING = (
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
"""The table-lock modes a rotation's SHARE ROW EXCLUSIVE waits for."""


class NoSigningKey(RuntimeError):
    """No usable key signs: `sinergi keys rotate` makes one."""


@dataclass(frozen=True, slots=True)
class Holder:
    """A session holding `signing_keys` in a mode a rotation waits for."""

    pid: int
    role: str | None
    application: str | None


class TableHeld(RuntimeError):
    """A rotation gave up waiting LOCK_WAIT_SECONDS for the table; `holders` held it then."""

    def __init__(self, holders: list[Holder]) -> None:
        super().__init__(f"signing_keys held by {len(holders)} other sessions")
        self.holders = holders


def new_key() -> ECKey:
    kid = f"sng-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return ECKey.generate_key(
        CURVE, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
    )


async def ensure_signing_key(connection: AsyncConnection) -> None:
    """A signing key, made by the first process to start on a new database.

    Every worker calls this as it starts, as the service, which may not insert a key (one
    planted beside the signing key outlived rotations): the owner's function (db/roles.py
    `MAKE_FIRST_KEY`) inserts only when no key signs, under a lock it takes only then (taken
    whatever the case, the service could hold it and a rotation up: migration 0040), so
    workers starting together on a new database make one key between them (each making its
    own, a worker that had loaded its keys before the other's was committed refused the tokens
    signed with it until it reloaded)."""
    key = new_key()
    await connection.execute(
        select(
            func.make_first_signing_key(
                str(key.kid),
                bindparam("private", key.as_dict(private=True), type_=JSONB),
                bindparam("public", key.as_dict(private=False), type_=JSONB),
            )
        )
    )


async def rotate(connection: AsyncConnection) -> str:
    """Retire every key that signs, and every one whose retirement is dated later than now (a
    key is accepted until a token lifetime after it), erase the private half of every retired
    key (nothing signs with it again, and the service role, which reads the table to sign,
    would hand it to whoever holds its credentials), and make the new signing key; every
    server process is notified as the transaction commits.

    The table is locked first, against every other writer until this commits: a key inserted
    in a transaction still open when the retirement ran would otherwise have been committed
    afterwards, unretired, and gone on verifying. A rotation is what ends a leak, so it does not
    wait on the lock for long: TableHeld names who holds it."""
    await _lock(connection)
    now = datetime.now(UTC)
    await connection.execute(
        update(SIGNING_KEYS)
        .where(or_(SIGNING_KEYS.c.retired_at.is_(None), SIGNING_KEYS.c.retired_at > now))
        .values(retired_at=now)
    )
    await connection.execute(
        update(SIGNING_KEYS)
        .where(SIGNING_KEYS.c.private_jwk != ERASED)
        .where(SIGNING_KEYS.c.retired_at.is_not(None))
        .values(private_jwk=ERASED)
    )
    key = new_key()
    kid = str(key.kid)
    await connection.execute(
        SIGNING_KEYS.insert().values(
            kid=kid, private_jwk=key.as_dict(private=True), public_jwk=key.as_dict(private=False)
        )
    )
    await connection.execute(select(func.pg_notify(CHANNEL, kid)))
    return kid


async def _lock(connection: AsyncConnection) -> None:
    """The table, against every other writer; TableHeld after LOCK_WAIT_SECONDS. In a
    savepoint, so that the transaction can still say who held it."""
    try:
        async with connection.begin_nested():
            await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
            await connection.execute(text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE"))
    except DBAPIError as error:
        if not is_lock_timeout(error):
            raise
        raise TableHeld(await _holders(connection)) from None


async def _holders(connection: AsyncConnection) -> list[Holder]:
    """The other sessions holding the table in a mode the rotation waits for, as
    `pg_blocking_pids` would have named them while it waited, with their role and
    application_name (which PostgreSQL shows every role)."""
    found = await connection.execute(
        text(
            "SELECT DISTINCT lock.pid, activity.usename, activity.application_name"
            " FROM pg_locks AS lock LEFT JOIN pg_stat_activity AS activity USING (pid)"
            " WHERE lock.relation = 'signing_keys'::regclass AND lock.granted"
            " AND lock.pid <> pg_backend_pid() AND lock.mode = ANY(:modes) ORDER BY lock.pid"
        ),
        {"modes": list(CONFLICTING)},
    )
    return [Holder(pid, role, application or None) for pid, role, application in found]


@dataclass(frozen=True, slots=True)
class Stored:
    """A row of `signing_keys`, as read."""

    kid: str
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class Published:
    kid: str
    jwk: dict[str, Any]
    """The public key, as JWKS publishes it."""
    key: ECKey
    """The same, imported."""
    retired_at: datetime | None
    """When it stopped signing: its row's, or, for a key not retired beside the signing one,
    when the signing key was made."""
    private: ECKey | None
    """The private half, of the signing key alone."""


@dataclass(frozen=True, slots=True)
class Keys:
    published: list[Published]
    """Oldest first; the signing key, if any, last."""
    unusable: dict[str, str]
    """kid -> why the row was skipped."""


def _imported(row: Stored) -> tuple[ECKey, ECKey | None]:
    """The row's public key and, while it signs, its private one; ValueError when the row is
    not an ES256 key of its own kid whose halves match."""
    public = ECKey.import_key(row.public_jwk)
    if public.is_private or public.get("crv") != CURVE or public.kid != row.kid:
        raise ValueError(f"public_jwk is not a public {CURVE} key with kid {row.kid!r}")
    if row.retired_at is not None:
        return public, None
    private = ECKey.import_key(row.private_jwk)
    if not private.is_private or _point(private) != _point(public):
        raise ValueError("private_jwk is not the private half of public_jwk")
    return public, private


def _point(key: ECKey) -> tuple[object, ...]:
    return tuple(key.get(name) for name in ("crv", "x", "y"))


def _retired_at(row: Stored, signing: Stored | None) -> datetime | None:
    """A key not retired yet not the signing one counts as retired when the signing one was
    made."""
    if row.retired_at is not None or row is signing or signing is None:
        return row.retired_at
    return signing.created_at


def usable(rows: Iterable[Stored]) -> Keys:
    """The rows that import, each dated as it verifies: the newest not retired signs, and every
    other not retired counts as retired when that one was made."""
    imported: list[tuple[Stored, ECKey, ECKey | None]] = []
    unusable: dict[str, str] = {}
    for row in rows:
        try:
            public, private = _imported(row)
        except Exception as error:  # joserfc, cryptography: many kinds, for a row of any JSON
            unusable[row.kid] = f"{type(error).__name__}: {error}"
            continue
        imported.append((row, public, private))
    imported.sort(key=lambda entry: (entry[0].created_at, entry[0].kid))
    signing = next((row for row, _, _ in reversed(imported) if row.retired_at is None), None)
    published = [
        Published(
            row.kid,
            dict(row.public_jwk),
            public,
            _retired_at(row, signing),
            private if row is signing else None,
        )
        for row, public, private in imported
    ]
    return Keys(published, unusable)


async def _stored(connection: AsyncConnection, still_valid: datetime | None) -> Sequence[Stored]:
    """Every row not retired, and those retired after `still_valid` (none when None)."""
    kept: ColumnElement[bool] = SIGNING_KEYS.c.retired_at.is_(None)
    if still_valid is not None:
        kept = or_(kept, SIGNING_KEYS.c.retired_at > still_valid)
    statement = select(
        SIGNING_KEYS.c.kid,
        SIGNING_KEYS.c.private_jwk,
        SIGNING_KEYS.c.public_jwk,
        SIGNING_KEYS.c.created_at,
        SIGNING_KEYS.c.retired_at,
    ).where(kept)
    return [Stored(*row) for row in await connection.execute(statement)]


async def signing_key(connection: AsyncConnection) -> ECKey:
    """The private key of the newest usable key not retired: the one the verifiers take as
    signing (`usable`)."""
    for key in reversed(usable(await _stored(connection, None)).published):
        if key.private is not None:
            return key.private
    raise NoSigningKey("no usable signing key: run `sinergi keys rotate`")


async def published_keys(connection: AsyncConnection, token_lifetime: int) -> Keys:
    """Public keys that may still have live tokens: signing, or retired within a lifetime (and
    the leeway verification allows)."""
    still_valid = datetime.now(UTC) - timedelta(seconds=token_lifetime + LEEWAY_SECONDS)
    found = usable(await _stored(connection, still_valid))
    live = [
        key for key in found.published if key.retired_at is None or key.retired_at > still_valid
    ]
    return Keys(live, found.unusable)


def kids(key_set: KeySet) -> set[str]:
    return {str(key.kid) for key in key_set.keys}
