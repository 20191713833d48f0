"""The change history of records, read per record (callers pass records they may already read)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import column, table
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import RECORD_CHANGES
from db.queries.paging import Page, first_rows_by_key

HISTORY = table("record_history", *(column(c.name, c.type) for c in RECORD_CHANGES.columns))
"""The view of migration 0015: `record_changes` and the entries of imported creations."""

RecordKey = tuple[str, int]
"""(record kind, record id), e.g. ("msme", 42)."""


async def of_records(
    connection: AsyncConnection, keys: Sequence[RecordKey], *, first: int
) -> dict[RecordKey, Page]:
    """The latest `first` changes of each record, oldest first, like the scale history: a
    record's story reads top to bottom, and a page that cannot hold it all holds its end, the
    changes a reader asks about (who changed it last), rather than its hundred oldest. Each
    (kind, id) is probed on its own, so the view's branch of imported creations looks the record
    up by id rather than scanning the records."""
    pages = await first_rows_by_key(
        connection,
        HISTORY,
        ("record_kind", "record_id"),
        keys,
        order=("id",),
        descending=True,
        first=first,
    )
    return {
        (kind, record_id): Page(rows=page.rows[::-1], has_next=page.has_next)
        for (kind, record_id), page in pages.items()
    }
