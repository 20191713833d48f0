"""The change history of records, read per record (callers pass records they may already read)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, column, or_, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import RECORD_CHANGES
from db.queries import Record, any_of

HISTORY = table("record_history", *(column(c.name, c.type) for c in RECORD_CHANGES.columns))
"""The view of migration 0015: `record_changes` and the entries of imported creations."""

RecordKey = tuple[str, int]
"""(record kind, record id), e.g. ("msme", 42)."""


async def of_records(
    connection: AsyncConnection, keys: Sequence[RecordKey]
) -> dict[RecordKey, list[Record]]:
    """Oldest first, like the scale history: a record's story reads top to bottom."""
    ids: dict[str, list[int]] = {}
    for kind, record_id in keys:
        ids.setdefault(kind, []).append(record_id)
    # A kind and an id array per kind: the view's branch of imported creations then probes
    # the records by id, where a list of (kind, id) pairs would have it scan them.
    statement = (
        select(HISTORY)
        .where(
            or_(
                *(
                    and_(HISTORY.c.record_kind == kind, any_of(HISTORY.c.record_id, of_kind))
                    for kind, of_kind in ids.items()
                )
            )
        )
        .order_by(HISTORY.c.id)
    )
    grouped: dict[RecordKey, list[Record]] = {key: [] for key in keys}
    for row in await connection.execute(statement):
        grouped[(row.record_kind, row.record_id)].append(row)
    return grouped
