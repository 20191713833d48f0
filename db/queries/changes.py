"""The change history of records, read per record (callers pass records they may already read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    case,
    cast,
    column,
    func,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, RECORD_CHANGES
from db.queries.paging import Page, first_rows_by_key
from db.queries.scoping import RowScope

HISTORY = table("record_history", *(column(c.name, c.type) for c in RECORD_CHANGES.columns))
"""The view of migration 0015: `record_changes` and the entries of imported creations."""

COOPERATIVE = "cooperative_id"
"""The column of an MSME that names another record, its cooperative, which may lie outside the
reader's scope though the MSME does not."""

RecordKey = tuple[str, int]
"""(record kind, record id), e.g. ("msme", 42)."""


def _cooperative_if_seen(value: Any, scope: RowScope) -> ColumnElement[Any]:
    """`value` (a cooperative's id as JSON) if the cooperative lies inside `scope`, else null:
    the same rows a cooperative's own read admits (`scope.rows`), so the history names no
    cooperative that `Msme.cooperative` and the change feed answer as none."""
    named = cast(value.astext, BigInteger)
    return (
        select(value).where(COOPERATIVES.c.id == named, scope.rows(COOPERATIVES)).scalar_subquery()
    )


def _seen_by(scope: RowScope) -> FromClause:
    """The history as `scope` may read it: a change of cooperative keeps its before and after
    only where they name a cooperative inside the scope (each a look-up by primary key, in the
    page's one statement, for the entries on the page alone)."""
    changes = HISTORY.c.changes
    cooperative = changes[COOPERATIVE]
    scoped = changes.op("||", return_type=changes.type)(
        func.jsonb_build_object(
            COOPERATIVE,
            func.jsonb_build_object(
                "before",
                _cooperative_if_seen(cooperative["before"], scope),
                "after",
                _cooperative_if_seen(cooperative["after"], scope),
            ),
        )
    )
    seen = case((changes.has_key(COOPERATIVE), scoped), else_=changes)
    others = [c for c in HISTORY.c if c.name != "changes"]
    return select(*others, seen.label("changes")).subquery("record_history")


async def of_records(
    connection: AsyncConnection, keys: Sequence[RecordKey], *, first: int, scope: RowScope
) -> dict[RecordKey, Page]:
    """The latest `first` changes of each record, oldest first, like the scale history: a
    record's story reads top to bottom, and a page that cannot hold it all holds its end, the
    changes a reader asks about (who changed it last), rather than its hundred oldest. Each
    (kind, id) is probed on its own, so the view's branch of imported creations looks the record
    up by id rather than scanning the records. What the entries say is what `scope` may read
    (`_seen_by`)."""
    pages = await first_rows_by_key(
        connection,
        _seen_by(scope),
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
