"""The audit log: append an entry, read entries, verify the hash chain.

The chain is computed by the database (migration 0002), and verification recomputes it with the
same SQL function, so the check cannot drift from how entries were sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from db import models
from db.models import table_of
from db.queries import Record

AUDIT = table_of(models.AuditEntry)
# Built once, values passed as parameters: `.values(...)` per call coerces every value into an
# expression and hashes the statement anew, on every audited request.
_APPEND = AUDIT.insert()


async def append(
    connection: AsyncConnection, *, client_id: str, entry: dict[str, Any], subjects: Sequence[str]
) -> None:
    parameters = {"client_id": client_id, "entry": entry, "subjects": sorted(set(subjects))}
    await connection.execute(_APPEND, parameters)


@dataclass(frozen=True, slots=True)
class BrokenLink:
    seq: int
    reason: str


_RECOMPUTED = text(
    """
    SELECT seq, prev_hash, hash,
           audit_log_hash(prev_hash, seq, at, client_id, entry, subjects) AS expected,
           lag(hash) OVER (ORDER BY seq) AS previous_hash,
           lag(seq) OVER (ORDER BY seq) AS previous_seq
      FROM audit_log ORDER BY seq
    """
)


async def verify(connection: AsyncConnection) -> tuple[int, BrokenLink | None]:
    """Walk the chain in order; return how many entries were checked and the first broken link."""
    checked = 0
    async for row in await connection.stream(_RECOMPUTED):
        checked += 1
        expected_seq = 1 if row.previous_seq is None else row.previous_seq + 1
        if row.seq != expected_seq:
            return checked, BrokenLink(expected_seq, "entry missing: the sequence has a gap")
        if row.prev_hash != (row.previous_hash or ""):
            return checked, BrokenLink(row.seq, "does not link to the entry before it")
        if row.hash != row.expected:
            return checked, BrokenLink(row.seq, "content does not match its hash")
    return checked, None


async def entries(
    connection: AsyncConnection,
    *,
    subject: str | None,
    client_id: str | None,
    first: int,
    after: int | None,
) -> list[Record]:
    statement = select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(first + 1)
    if subject is not None:
        statement = statement.where(AUDIT.c.subjects.contains([subject]))
    if client_id is not None:
        statement = statement.where(AUDIT.c.client_id == client_id)
    if after is not None:
        statement = statement.where(AUDIT.c.seq < after)
    return list(await connection.execute(statement))


async def accessors_of(connection: AsyncConnection, subject: str) -> list[Record]:
    """Which clients received this person's data, how often, first and last time."""
    statement = (
        select(
            AUDIT.c.client_id,
            func.max(AUDIT.c.entry["organisation"].astext).label("organisation"),
            func.count().label("times"),
            func.min(AUDIT.c.at).label("first_at"),
            func.max(AUDIT.c.at).label("last_at"),
        )
        .where(AUDIT.c.subjects.contains([subject]))
        .group_by(AUDIT.c.client_id)
        .order_by(AUDIT.c.client_id)
    )
    return list(await connection.execute(statement))
