"""Token-signing keys: ES256, stored in PostgreSQL so every process signs and verifies alike.

Rotation adds a new signing key and retires the old one; a retired key stays published and
keeps verifying the tokens it signed before until they have expired, so rotation never logs
anyone out (auth/keyring.py says which it accepts, and how each process learns of a rotation).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.tokens import LEEWAY_SECONDS
from db.models import SIGNING_KEYS

ALGORITHM = "ES256"
CHANNEL = "sinergi_keys"
ERASED: dict[str, Any] = {}
"""A retired key's `private_jwk`."""
"""NOTIFYed, with the new key's kid, as a rotation commits (auth/keyring.py)."""
SIGNING_KEY_LOCK = func.hashtext("sinergi.signing_key")
"""Advisory lock key: held while a process looks for a signing key and makes one if none."""


def new_key() -> ECKey:
    kid = f"sng-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    return ECKey.generate_key(
        "P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
    )


async def _insert(connection: AsyncConnection, key: ECKey) -> str:
    kid = str(key.kid)
    await connection.execute(
        SIGNING_KEYS.insert().values(
            kid=kid, private_jwk=key.as_dict(private=True), public_jwk=key.as_dict(private=False)
        )
    )
    return kid


async def ensure_signing_key(connection: AsyncConnection) -> None:
    """A signing key, made by the first process to start on a new database.

    Every worker calls this as it starts. Without the lock, workers starting together on a new
    database each found no key and each made one; a worker that had loaded its keys before the
    other's was committed then refused the tokens signed with it (401) until it reloaded."""
    await connection.execute(select(func.pg_advisory_xact_lock(SIGNING_KEY_LOCK)))
    active = select(SIGNING_KEYS.c.kid).where(SIGNING_KEYS.c.retired_at.is_(None)).limit(1)
    if (await connection.execute(active)).first() is None:
        await _insert(connection, new_key())


async def rotate(connection: AsyncConnection) -> str:
    """Retire every key that signs, and every one whose retirement is dated later than now (a
    key is accepted until a token lifetime after it), erase the private half of every retired
    key (nothing signs with it again, and the service role, which reads the table to sign,
    would hand it to whoever holds its credentials), and make the new signing key; every
    server process is notified as the transaction commits."""
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
    kid = await _insert(connection, new_key())
    await connection.execute(select(func.pg_notify(CHANNEL, kid)))
    return kid


async def signing_key(connection: AsyncConnection) -> ECKey:
    statement = (
        select(SIGNING_KEYS.c.private_jwk)
        .where(SIGNING_KEYS.c.retired_at.is_(None))
        .order_by(SIGNING_KEYS.c.created_at.desc())
        .limit(1)
    )
    return ECKey.import_key((await connection.execute(statement)).scalar_one())


@dataclass(frozen=True, slots=True)
class Published:
    kid: str
    jwk: dict[str, Any]
    """The public key, as JWKS publishes it."""
    retired_at: datetime | None


async def published_keys(connection: AsyncConnection, token_lifetime: int) -> list[Published]:
    """Public keys that may still have live tokens: active, or retired within a lifetime (and
    the leeway verification allows)."""
    still_valid = datetime.now(UTC) - timedelta(seconds=token_lifetime + LEEWAY_SECONDS)
    statement = (
        select(SIGNING_KEYS.c.kid, SIGNING_KEYS.c.public_jwk, SIGNING_KEYS.c.retired_at)
        .where(or_(SIGNING_KEYS.c.retired_at.is_(None), SIGNING_KEYS.c.retired_at > still_valid))
        .order_by(SIGNING_KEYS.c.created_at)
    )
    return [
        Published(row.kid, dict(row.public_jwk), row.retired_at)
        for row in await connection.execute(statement)
    ]


def kids(key_set: KeySet) -> set[str]:
    return {str(key.kid) for key in key_set.keys}
