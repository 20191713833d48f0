"""Cooperative reads, scoped to the caller's jurisdiction in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, PARTICIPATIONS
from db.queries import Record
from db.queries.paging import Listing, columns_of
from db.queries.programmes import took_part
from db.queries.scoping import RowScope, within


@dataclass(frozen=True, slots=True)
class CooperativeFilter:
    region: str | None = None
    type: str | None = None
    active: bool | None = None
    programme: str | None = None

    @property
    def members_only(self) -> bool:
        """Whether it keeps only a programme's participants, which only readers of the records
        may list."""
        return self.programme is not None

    @property
    def revealed(self) -> frozenset[str]:
        """None of an owner's finances (MsmeFilter.revealed): a cooperative is a legal entity."""
        return frozenset()


def conditions(
    scope: RowScope, where: CooperativeFilter, *, figures: bool = False
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `where` for a reader of `scope`, or for figures (msmes.conditions)."""
    clauses = [scope.rows(COOPERATIVES)]
    if where.region is not None:
        clauses.append(within(COOPERATIVES, where.region))
    if where.type is not None:
        clauses.append(COOPERATIVES.c.type == where.type)
    if where.active is not None:
        status = COOPERATIVES.c.status == "active"
        clauses.append(status if where.active else ~status)
    if where.programme is not None:
        subject = PARTICIPATIONS.c.cooperative_id == COOPERATIVES.c.id
        clauses.append(took_part(scope, subject, where.programme, figures=figures))
    return clauses


LISTING = Listing(COOPERATIVES, conditions)
"""Cooperatives' pages, counts and lookups by id."""


def legal_entity_no_is(number: ColumnElement[str]) -> ColumnElement[bool]:
    """The cooperative a lookup by legal-entity number finds: compared in lower case, as the
    register holds an older number unique (db.models `LEGAL_ENTITY_NO_FOLDED`, whose index
    serves the lookup), so `600/bh/xiv/2001` finds the cooperative that registering it again is
    refused for. A Kemenkumham number is stored in one upper-case spelling (a CHECK), the one
    its key is given in (domain.identifiers `legal_entity_no_key`), so it finds that spelling
    alone."""
    return func.lower(COOPERATIVES.c.legal_entity_no) == func.lower(number)


async def by_legal_entity_nos(
    connection: AsyncConnection,
    numbers: Sequence[str],
    *,
    scope: RowScope,
    columns: Collection[str],
) -> dict[str, Record]:
    """Each number's cooperative (`legal_entity_no_is`), keyed by the number as it was asked:
    the stored spelling may differ in case, and PostgreSQL's lower() is the one that matched."""
    asked = (
        func.unnest(bindparam(None, list(numbers), type_=ARRAY(Text)))
        .table_valued("number", name="asked")
        .render_derived()
    )
    statement = (
        select(asked.c.number.label("asked"), *columns_of(COOPERATIVES, columns))
        .select_from(asked.join(COOPERATIVES, legal_entity_no_is(asked.c.number)))
        .where(scope.rows(COOPERATIVES))
    )
    return {row.asked: row for row in await connection.execute(statement)}
