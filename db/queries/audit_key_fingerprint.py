"""The recorded fingerprint of the key that seals the audit trail (migration 0044).

Read by every `serve` before it serves, and recorded by the first through the owner's function,
which writes one only when none is there: the service's role may only read the table, so whoever
holds its credentials cannot replace the fingerprint with another key's.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_RECORDED = text("SELECT (SELECT fingerprint FROM audit_key_fingerprint)")
_TRAIL = text("SELECT (SELECT id::text FROM audit_trail)")
_RECORD = text("SELECT record_audit_key_fingerprint(:fingerprint)")


async def recorded(connection: AsyncConnection) -> str | None:
    """The fingerprint recorded; None until a `serve` recorded its key's."""
    found = (await connection.execute(_RECORDED)).scalar_one()
    return None if found is None else str(found)


async def trail(connection: AsyncConnection) -> str:
    """The trail's id, which a fingerprint is of ("" when `audit_trail` is empty)."""
    return str((await connection.execute(_TRAIL)).scalar_one() or "")


async def record(connection: AsyncConnection, fingerprint: str) -> str:
    """Record `fingerprint` unless one is already: the fingerprint recorded, whoever's."""
    return str((await connection.execute(_RECORD, {"fingerprint": fingerprint})).scalar_one())
