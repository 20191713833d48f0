"""Cooperative reads, scoped to the caller's jurisdiction in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, PARTICIPATIONS
from db.queries import Record, any_of
from db.queries.paging import Page, columns_of, count, fetch_page
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


def conditions(scope: RowScope, where: CooperativeFilter) -> list[ColumnElement[bool]]:
    clauses = [scope.rows(COOPERATIVES)]
    if where.region is not None:
        clauses.append(within(COOPERATIVES, where.region))
    if where.type is not None:
        clauses.append(COOPERATIVES.c.type == where.type)
    if where.active is not None:
        status = COOPERATIVES.c.status == "active"
        clauses.append(status if where.active else ~status)
    if where.programme is not None:
        clauses.append(
            took_part(PARTICIPATIONS.c.cooperative_id == COOPERATIVES.c.id, where.programme)
        )
    return clauses


async def page(
    connection: AsyncConnection,
    *,
    scope: RowScope,
    where: CooperativeFilter,
    columns: Collection[str],
    first: int,
    after: int | None,
) -> Page:
    return await fetch_page(
        connection,
        COOPERATIVES,
        columns=columns,
        where=conditions(scope, where),
        first=first,
        after=after,
    )


async def total(connection: AsyncConnection, *, scope: RowScope, where: CooperativeFilter) -> int:
    return await count(connection, COOPERATIVES, conditions(scope, where))


async def by_ids(
    connection: AsyncConnection, ids: Sequence[int], *, scope: RowScope, columns: Collection[str]
) -> dict[int, Record]:
    statement = select(*columns_of(COOPERATIVES, columns)).where(
        any_of(COOPERATIVES.c.id, ids), scope.rows(COOPERATIVES)
    )
    return {row.id: row for row in await connection.execute(statement)}


async def by_legal_entity_nos(
    connection: AsyncConnection,
    numbers: Sequence[str],
    *,
    scope: RowScope,
    columns: Collection[str],
) -> dict[str, Record]:
    statement = select(*columns_of(COOPERATIVES, {"legal_entity_no", *columns})).where(
        any_of(COOPERATIVES.c.legal_entity_no, numbers), scope.rows(COOPERATIVES)
    )
    return {row.legal_entity_no: row for row in await connection.execute(statement)}
