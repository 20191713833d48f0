"""Programmes (public reference) and participation in them (records, scoped by where their
business lies, or by the programme's region once it has left it: `visible`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    and_,
    column,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import (
    AGENCIES,
    COOPERATIVES,
    MSME_SCALE_HISTORY,
    MSMES,
    PARTICIPATIONS,
    PROGRAMMES,
)
from db.queries import Record, any_of
from db.queries.owners import owners_kept
from db.queries.paging import Page, first_rows_by_key
from db.queries.scoping import NATIONAL, RowScope
from domain.participations import TOOK_PART

SCALE_HISTORY = table(
    "scale_history",
    *(column(c.name, c.type) for c in MSME_SCALE_HISTORY.columns if c.name != "id"),
)
"""The view of migration 0016: `msme_scale_history` and the first entries of imported records."""


def took_part(
    scope: RowScope, subject: ColumnElement[bool], programme: str, *, figures: bool = False
) -> ColumnElement[bool]:
    """Whether the business `subject` ties a participation to (its participation column equal to
    the business's id) takes or took part in `programme`: a
    participation of it there in a status of `TOOK_PART` (ACTIVE or COMPLETED), the `programme`
    filter of records and figures. The statuses as constants (`OR`), which the driver renders
    as one statement text (db/driver.py takes no IN list).

    Only a participation the reader may see counts (`visible`): one left behind in another
    region's programme (`left_behind`) would tell the region its business moved to that it
    took part there. Figures, read under EVERYWHERE for every reader, count only a participation
    whose business still lies in the programme's region (not `left_behind` anywhere): its
    business is counted where it lies now, whose readers may not see that participation."""
    status = PARTICIPATIONS.c.status
    counts = not_(left_behind(scope, PARTICIPATIONS)) if figures else visible(scope, PARTICIPATIONS)
    return exists().where(
        subject,
        PARTICIPATIONS.c.programme_id == programme,
        or_(*(status == value.value for value in sorted(TOOK_PART))),
        counts,
    )


def owned_by(org_kind: str, jurisdiction: str) -> ColumnElement[bool]:
    """Whether the programme is owned by a client of `org_kind` and `jurisdiction`: its owning
    agency (`owner_agency_id`) is of that kind and jurisdiction. A token says no more of its
    organisation than these two (`org_kind`, `jurisdiction`), so agencies sharing both (two
    ministries, national) are not told apart; a programme with no owning agency is no one's."""
    return PROGRAMMES.c.owner_agency_id.in_(
        select(AGENCIES.c.id).where(
            AGENCIES.c.org_kind == org_kind, AGENCIES.c.jurisdiction == jurisdiction
        )
    )


async def all_programmes(connection: AsyncConnection) -> list[Record]:
    return list(await connection.execute(select(PROGRAMMES).order_by(PROGRAMMES.c.id)))


async def by_ids(connection: AsyncConnection, ids: Sequence[str]) -> dict[str, Record]:
    statement = select(PROGRAMMES).where(any_of(PROGRAMMES.c.id, ids))
    return {row.id: row for row in await connection.execute(statement)}


def lies_in(place: FromClause, jurisdiction: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the row of `place` (MSMEs, cooperatives, or the places an import would give
    MSMES) lies in the programme region `jurisdiction`: it is national or the row's province,
    regency or kecamatan (the region codes nest, as domain.identifiers.is_within reads them).
    In SQL, so a move is checked against where the record stands in the same transaction."""
    columns = place.c
    return lies_in_place(
        columns.province_code, columns.regency_code, columns.district_code, jurisdiction
    )


def lies_in_place(
    province: ColumnElement[Any],
    regency: ColumnElement[Any],
    district: ColumnElement[Any],
    jurisdiction: ColumnElement[str],
) -> ColumnElement[bool]:
    """`lies_in` for a place given by its region columns rather than a row's own (where a
    change-feed entry says a business was)."""
    return jurisdiction.in_(
        (literal(NATIONAL), province, regency, func.coalesce(district, regency))
    )


Placing = Callable[[FromClause, ColumnElement[bool], ColumnElement[str]], ColumnElement[bool]]
"""Given a participation's business (its table), whether it lies in the programme's region and
that region's code, whether the participation counts."""


def _placed(participations: FromClause, placing: Placing) -> ColumnElement[bool]:
    """The participations (rows of `participations`) that `placing` admits, their business and
    programme read beside them."""
    programme = PROGRAMMES.alias("its_programme")

    def of(subject: FromClause, link: ColumnElement[Any]) -> ColumnElement[bool]:
        stays = lies_in(subject, programme.c.jurisdiction)
        found = (
            select(literal(1))
            .select_from(programme.join(subject, true()))  # each narrowed to one row below
            .where(
                subject.c.id == link,
                programme.c.id == participations.c.programme_id,
                placing(subject, stays, programme.c.jurisdiction),
            )
            .exists()
        )
        # correlated with the participations alone, however deep the statement nests them
        return found.correlate(participations)

    return or_(
        of(MSMES, participations.c.msme_id), of(COOPERATIVES, participations.c.cooperative_id)
    )


def visible(scope: RowScope, participations: FromClause) -> ColumnElement[bool]:
    """The participations (rows of `participations`, PARTICIPATIONS or a selection of it) the
    caller may read and write. A participation lies where its MSME or cooperative does while
    the business lies in the programme's region, as it must while it takes part. Once the
    participation has ended the business may move out of that region
    (db/writes/participations.check_move); the participation then lies in the programme's
    region and stays its record (`left_behind`): the region the business moved to neither sees
    nor rewrites another region's programme, and the programme's region sees it without the
    business, which is outside its jurisdiction now (the participation's `msme`, `cooperative`
    read scoped)."""
    return _placed(
        participations,
        lambda subject, stays, region: or_(
            and_(stays, scope.rows(subject)), and_(not_(stays), scope.holds(region))
        ),
    )


def left_behind(scope: RowScope, participations: FromClause) -> ColumnElement[bool]:
    """The participations the caller may read (`visible`) because their business has left the
    programme's region, which lies in its jurisdiction: the change feed places every entry where
    the business is, and owes such a participation's changes to the programme's region too."""
    return _placed(
        participations, lambda subject, stays, region: and_(not_(stays), scope.holds(region))
    )


async def participants_of(
    connection: AsyncConnection, programme_ids: Sequence[str], *, scope: RowScope, first: int
) -> dict[str, Page]:
    """The first participants of many programmes in one statement: each programme's own rows,
    read in id order from its index until one past the page, rather than all of them ranked.
    The size is written into the SQL, as a page's is (db/queries/json_pages.py)."""
    first_rows = (
        select(PARTICIPATIONS)
        .where(PARTICIPATIONS.c.programme_id == PROGRAMMES.c.id, visible(scope, PARTICIPATIONS))
        .order_by(PARTICIPATIONS.c.id)
        .limit(literal_column(str(int(first) + 1)))
        .lateral("first_rows")
    )
    statement = (
        select(first_rows)
        .select_from(PROGRAMMES.join(first_rows, true()))
        .where(any_of(PROGRAMMES.c.id, programme_ids))
        .order_by(first_rows.c.id)
    )
    grouped: dict[str, list[Record]] = {key: [] for key in programme_ids}
    for row in await connection.execute(statement):
        grouped[row.programme_id].append(row)
    return {
        key: Page(rows=rows[:first], has_next=len(rows) > first) for key, rows in grouped.items()
    }


async def participations_of(
    connection: AsyncConnection, link: str, ids: Sequence[int], *, scope: RowScope, first: int
) -> dict[int, Page]:
    """The first participations (in id order) of each MSME or cooperative, as `link` names the
    column, that the caller may read (`visible`): callers pass records they could already read,
    but one of them may have moved here from the region of a programme it took part in."""
    pages = await first_rows_by_key(
        connection,
        PARTICIPATIONS,
        (link,),
        [(key,) for key in ids],
        order=("id",),
        first=first,
        where=(visible(scope, PARTICIPATIONS),),
    )
    return {key: page for (key,), page in pages.items()}


async def scale_history_of(
    connection: AsyncConnection, msme_ids: Sequence[int], *, owner: bool
) -> dict[int, list[Record]]:
    """Each MSME's scale changes, oldest first; with `owner`, each with the NIKs of the owners
    whose figures it holds (`owner_niks`), for a reader of their figures: the owner's finances
    (domain.personal.OWNER_FINANCES), the NIKs read for the audit entry alone."""
    history = SCALE_HISTORY.c
    columns: list[Any] = [c for c in history if c.name != "owner_niks"]
    if owner:
        columns.append(owners_kept(history.owner_niks, history.msme_id))
    statement = (
        select(*columns)
        .where(any_of(SCALE_HISTORY.c.msme_id, msme_ids))
        .order_by(SCALE_HISTORY.c.msme_id, SCALE_HISTORY.c.effective_from)
    )
    grouped: dict[int, list[Record]] = {key: [] for key in msme_ids}
    for row in await connection.execute(statement):
        grouped[row.msme_id].append(row)
    return grouped
