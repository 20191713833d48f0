"""MSME reads. Every function takes the caller's row scope and asks it for the WHERE clause."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import MSMES, PARTICIPATIONS
from db.queries import Record, any_of
from db.queries.paging import Listing, Page, columns_of
from db.queries.programmes import took_part
from db.queries.scoping import RowScope, within


@dataclass(frozen=True, slots=True)
class MsmeFilter:
    region: str | None = None
    scale: str | None = None
    kbli_section: str | None = None
    active: bool | None = None
    programme: str | None = None
    cooperative_id: int | None = None

    @property
    def members_only(self) -> bool:
        """Whether it keeps only the members of a programme or a cooperative: memberships that
        only readers of the records may list."""
        return self.programme is not None or self.cooperative_id is not None

    @property
    def revealed(self) -> frozenset[str]:
        """The columns whose value it tells of every record it keeps, selected or not: a scale
        asked for is each listed business's, and so its owner's finances
        (domain.personal.OWNER_FINANCES), whose owner a page of them names. A count alone
        tells it of no record."""
        return frozenset() if self.scale is None else frozenset({"scale"})


def conditions(
    scope: RowScope, where: MsmeFilter, *, figures: bool = False
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `where` for a reader of `scope`; `figures`: for figures, read under
    EVERYWHERE, whose `programme` filter counts another set of participations (`took_part`)."""
    clauses = [scope.rows(MSMES)]
    if where.region is not None:
        clauses.append(within(MSMES, where.region))
    if where.scale is not None:
        clauses.append(MSMES.c.scale == where.scale)
    if where.kbli_section is not None:
        clauses.append(MSMES.c.kbli_section == where.kbli_section)
    if where.active is not None:
        clauses.append(MSMES.c.is_active.is_(where.active))
    if where.cooperative_id is not None:
        clauses.append(MSMES.c.cooperative_id == where.cooperative_id)
    if where.programme is not None:
        subject = PARTICIPATIONS.c.msme_id == MSMES.c.id
        clauses.append(took_part(scope, subject, where.programme, figures=figures))
    return clauses


LISTING = Listing(MSMES, conditions)
"""MSMEs' pages, counts and lookups by id."""


async def by_nibs(
    connection: AsyncConnection, nibs: Sequence[str], *, scope: RowScope, columns: Collection[str]
) -> dict[str, Record]:
    statement = select(*columns_of(MSMES, {"nib", *columns})).where(
        any_of(MSMES.c.nib, nibs), scope.rows(MSMES)
    )
    return {row.nib: row for row in await connection.execute(statement)}


async def members_of(
    connection: AsyncConnection,
    cooperative_ids: Sequence[int],
    *,
    scope: RowScope,
    columns: Collection[str],
    first: int,
    after: int | None = None,
) -> dict[int, Page]:
    """The first members of many cooperatives in one statement (a window per cooperative), or
    the first after the MSME whose id is `after`, the same for each: a page's members follow
    in id order, so the cursor of the last one shown names where each next page begins."""
    position = func.row_number().over(partition_by=MSMES.c.cooperative_id, order_by=MSMES.c.id)
    where = [any_of(MSMES.c.cooperative_id, cooperative_ids), scope.rows(MSMES)]
    if after is not None:
        where.append(MSMES.c.id > after)
    ranked = (
        select(*columns_of(MSMES, {"cooperative_id", *columns}), position.label("position"))
        .where(*where)
        .subquery()
    )
    statement = select(ranked).where(ranked.c.position <= first + 1).order_by(ranked.c.id)
    grouped: dict[int, list[Record]] = {key: [] for key in cooperative_ids}
    for row in await connection.execute(statement):
        grouped[row.cooperative_id].append(row)
    return {
        key: Page(rows=rows[:first], has_next=len(rows) > first) for key, rows in grouped.items()
    }


async def member_counts(
    connection: AsyncConnection, cooperative_ids: Sequence[int], *, scope: RowScope
) -> dict[int, int]:
    statement = (
        select(MSMES.c.cooperative_id, func.count())
        .where(any_of(MSMES.c.cooperative_id, cooperative_ids), scope.rows(MSMES))
        .group_by(MSMES.c.cooperative_id)
    )
    counts = {row[0]: int(row[1]) for row in await connection.execute(statement)}
    return {key: counts.get(key, 0) for key in cooperative_ids}
