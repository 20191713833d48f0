"""The change history of records, read per record (callers pass records they may already read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Table,
    Text,
    case,
    cast,
    column,
    func,
    literal,
    null,
    or_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, MSMES, RECORD_CHANGES
from db.queries.owners import owners_kept
from db.queries.paging import Page, first_rows_by_key
from db.queries.scoping import RowScope

HISTORY = table("record_history", *(column(c.name, c.type) for c in RECORD_CHANGES.columns))
"""The view of migration 0015: `record_changes` and the entries of imported creations."""

LINKS: dict[str, Table] = {"cooperative_id": COOPERATIVES, "msme_id": MSMES}
"""The fields of a record's history that name another record, which may lie outside the
reader's scope though the record does not: an MSME's cooperative, and a participation's
business once it has left the programme's region (db/queries/programmes.visible)."""

RecordKey = tuple[str, int]
"""(record kind, record id), e.g. ("msme", 42)."""


def _if_seen(target: Table, value: Any, scope: RowScope) -> ColumnElement[Any]:
    """`value` (the id of a row of `target` as JSON) if that row lies inside `scope`, else
    null: the same rows the record's own read admits (`scope.rows`), so the history names no
    cooperative or business that `Msme.cooperative`, `Participation.msme` and the change feed
    answer as none."""
    named = cast(value.astext, BigInteger)
    return select(value).where(target.c.id == named, scope.rows(target)).scalar_subquery()


def _seen_by(scope: RowScope, owner: bool) -> FromClause:
    """The history as `scope` may read it: a field naming another record (`LINKS`) keeps its
    before and after only where they name a record inside the scope (each a look-up by primary
    key, in the page's one statement, for the entries on the page alone), and an entry that
    changed nothing else is not there at all (`_tells`); `owner`: with the NIKs of an MSME's
    owners whose figures the entry holds (`owner_niks`)."""
    changes = HISTORY.c.changes
    seen: ColumnElement[Any] = changes
    links: list[tuple[ColumnElement[Any], ColumnElement[Any]]] = []
    for field, target in LINKS.items():
        before = _if_seen(target, changes[field]["before"], scope)
        after = _if_seen(target, changes[field]["after"], scope)
        scoped = seen.op("||", return_type=changes.type)(
            func.jsonb_build_object(
                field, func.jsonb_build_object("before", before, "after", after)
            )
        )
        seen = case((changes.has_key(field), scoped), else_=seen)
        links.append((before, after))
    kept = {"changes", "owner_niks"}
    columns: list[ColumnElement[Any]] = [c for c in HISTORY.c if c.name not in kept]
    columns.append(seen.label("changes"))
    if owner:
        columns.append(_owners_of_msme())
    return select(*columns).where(_tells(changes, links)).subquery("record_history")


def _owners_of_msme() -> ColumnElement[Any]:
    """The NIKs of the owners whose figures an MSME's entry holds (null for any other record):
    an MSME's figures are its owner's finances (domain.personal.OWNER_FINANCES), so a change of
    them names those owners in the audit entry; read for it alone."""
    owners = owners_kept(HISTORY.c.owner_niks, HISTORY.c.record_id)
    named = case((HISTORY.c.record_kind == "msme", owners), else_=null())
    return named.label("owner_niks")


def _tells(
    changes: ColumnElement[Any], links: list[tuple[ColumnElement[Any], ColumnElement[Any]]]
) -> ColumnElement[bool]:
    """Whether an entry shows the reader a change: it changed no field of `LINKS`, or one names
    a record the reader sees before or after (`links`: each field's before and after as
    `_if_seen` gives them), or some other field, or personal data (whose names the history
    shows to every reader). An entry whose only change is of cooperatives the reader cannot see
    would show no field, only who changed the business's cooperative and when: the reader does
    not get it, as the change feed gives a member's entry for its cooperative's move only to a
    reader who sees the cooperative (migration 0027). In the statement, so a page of `first` is
    `first` entries the reader gets."""
    fields = literal(list(LINKS), ARRAY(Text))
    return or_(
        ~changes.has_any(fields),
        *(before.is_distinct_from(after) for before, after in links),
        changes.op("-", return_type=changes.type)(fields) != literal({}, JSONB),
        func.cardinality(HISTORY.c.personal_fields) > 0,
    )


async def of_records(
    connection: AsyncConnection,
    keys: Sequence[RecordKey],
    *,
    first: int,
    scope: RowScope,
    owner: bool,
) -> dict[RecordKey, Page]:
    """The latest `first` changes of each record, oldest first, like the scale history: a
    record's story reads top to bottom, and a page that cannot hold it all holds its end, the
    changes a reader asks about (who changed it last), rather than its hundred oldest. Each
    (kind, id) is probed on its own, so the view's branch of imported creations looks the record
    up by id rather than scanning the records. What the entries say is what `scope` may read
    (`_seen_by`); with `owner`, an MSME's come with the NIKs of the owners whose figures they
    hold (`owner_niks`), for the audit entry when they show what changed (the figures may be
    among it)."""
    pages = await first_rows_by_key(
        connection,
        _seen_by(scope, owner),
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
