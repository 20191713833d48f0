"""The change history of records, read per record (callers pass records they may already read)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from db import models
from db.models import table_of
from db.queries import Record

CHANGES = table_of(models.RecordChange)

RecordKey = tuple[str, int]
"""(record kind, record id), e.g. ("msme", 42)."""


async def of_records(
    connection: AsyncConnection, keys: Sequence[RecordKey]
) -> dict[RecordKey, list[Record]]:
    """Oldest first, like the scale history: a record's story reads top to bottom."""
    statement = (
        select(CHANGES)
        .where(tuple_(CHANGES.c.record_kind, CHANGES.c.record_id).in_(list(keys)))
        .order_by(CHANGES.c.id)
    )
    grouped: dict[RecordKey, list[Record]] = {key: [] for key in keys}
    for row in await connection.execute(statement):
        grouped[(row.record_kind, row.record_id)].append(row)
    return grouped
