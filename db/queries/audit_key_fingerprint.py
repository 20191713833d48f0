"""The recorded fingerprint of the key that seals the audit trail (migration 0044).

Read by every `serve` before it serves, and recorded by the first through the owner's function,
which writes one only when none is there: the service's role may only read the table, so whoever
holds its credentials cannot replace the fingerprint with another key's (though, calling the
function before any server of a new deployment or release did, it could record one first: every
`serve` then refuses its key, and the owner resets it as the README's audit section says).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.seals import key_fingerprint

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


async def names(connection: AsyncConnection, key: bytes) -> bool | None:
    """Whether the recorded fingerprint is `key`'s; None while none is recorded."""
    found = await recorded(connection)
    if found is None:
        return None
    return found == key_fingerprint(key, await trail(connection))
