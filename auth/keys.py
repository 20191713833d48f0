"""Token-signing keys: ES256, stored in PostgreSQL so every process signs and verifies alike.

Rotation adds a new signing key and retires the old one; a retired key stays published and
keeps verifying until every token it signed has expired, so rotation never logs anyone out.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import SIGNING_KEYS

ALGORITHM = "ES256"
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
    await connection.execute(
        update(SIGNING_KEYS)
        .where(SIGNING_KEYS.c.retired_at.is_(None))
        .values(retired_at=datetime.now(UTC))
    )
    return await _insert(connection, new_key())


async def signing_key(connection: AsyncConnection) -> ECKey:
    statement = (
        select(SIGNING_KEYS.c.private_jwk)
        .where(SIGNING_KEYS.c.retired_at.is_(None))
        .order_by(SIGNING_KEYS.c.created_at.desc())
        .limit(1)
    )
    return ECKey.import_key((await connection.execute(statement)).scalar_one())


async def published_keys(connection: AsyncConnection, token_lifetime: int) -> list[dict[str, Any]]:
    """Public keys that may still have live tokens: active, or retired within a lifetime."""
    still_valid = datetime.now(UTC) - timedelta(seconds=token_lifetime)
    statement = (
        select(SIGNING_KEYS.c.public_jwk)
        .where(or_(SIGNING_KEYS.c.retired_at.is_(None), SIGNING_KEYS.c.retired_at > still_valid))
        .order_by(SIGNING_KEYS.c.created_at)
    )
    return [dict(row[0]) for row in await connection.execute(statement)]


def key_set(public_keys: list[dict[str, Any]]) -> KeySet:
    return KeySet([ECKey.import_key(key) for key in public_keys])


def kids(key_set: KeySet) -> set[str]:
    return {str(key.kid) for key in key_set.keys}
