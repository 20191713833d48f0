"""Keyset pages over a table's primary key: stable under inserts and O(page) at any depth."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import MSMES
from db.queries import Record, any_of
from db.queries.owners import owner_nik
from db.queries.scoping import RowScope
from domain.personal import owner_finances


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Record]
    has_next: bool
    peeked: Record | None = None
    """The row read past the page to tell `has_next` (a listing's page): what the page's filter
    tells of its rows, `has_next` tells of this one."""


def columns_of(table: Table, names: Collection[str]) -> list[Any]:
    """The requested columns plus the key, so unrequested columns are never fetched; with an
    MSME's figures that are its owner's finances (domain.personal.OWNER_FINANCES), the owner's
    NIK (`owner_nik`), for the audit entry alone."""
    columns: list[Any] = [table.c[name] for name in sorted({"id", *names})]
    if table is MSMES and owner_finances("Msme", names):
        columns.append(owner_nik(MSMES.c.id))
    return columns


Filter = TypeVar("Filter")


@dataclass(frozen=True, slots=True)
class Listing(Generic[Filter]):
    """The lists, counts and lookups by id of one kind of record (db/queries/msmes.py,
    cooperatives.py): its table, and the WHERE clauses of a caller's row scope and a list's
    filter. One implementation, so both kinds page, count and scope their lookups alike."""

    table: Table
    conditions: Callable[[RowScope, Filter], list[ColumnElement[bool]]]

    async def page(
        self,
        connection: AsyncConnection,
        *,
        scope: RowScope,
        where: Filter,
        columns: Collection[str],
        first: int,
        after: int | None,
    ) -> Page:
        table = self.table
        statement: Select[Any] = select(*columns_of(table, columns)).where(
            *self.conditions(scope, where)
        )
        if after is not None:
            statement = statement.where(table.c.id > after)
        rows = (await connection.execute(statement.order_by(table.c.id).limit(first + 1))).all()
        peeked = rows[first] if len(rows) > first else None
        return Page(rows=rows[:first], has_next=peeked is not None, peeked=peeked)

    async def total(self, connection: AsyncConnection, *, scope: RowScope, where: Filter) -> int:
        statement = (
            select(func.count()).select_from(self.table).where(*self.conditions(scope, where))
        )
        return int((await connection.execute(statement)).scalar_one())

    async def by_ids(
        self,
        connection: AsyncConnection,
        ids: Sequence[int],
        *,
        scope: RowScope,
        columns: Collection[str],
    ) -> dict[int, Record]:
        """The records of `ids` the scope lets the caller see; the others are absent."""
        statement = select(*columns_of(self.table, columns)).where(
            any_of(self.table.c.id, ids), scope.rows(self.table)
        )
        return {row.id: row for row in await connection.execute(statement)}


async def first_rows_by_key(
    connection: AsyncConnection,
    rows: FromClause,
    key: Sequence[str],
    keys: Sequence[tuple[Any, ...]],
    *,
    order: Sequence[str],
    descending: bool = False,
    first: int,
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[tuple[Any, ...], Page]:
    """The first `first` rows of `rows` for each of `keys` (values of its `key` columns) in
    `order`, and whether more follow, in one statement. A history or a list of links only
    grows, so each key's rows are read by a LATERAL subquery until one past the page (along
    the index on the key, where there is one), rather than all of them. The keys go as one
    array per column (one statement text for any batch, as `any_of`) and the size is written
    into the SQL, as a page's is (db/queries/json_pages.py). `where`: which of the rows the
    caller may read."""
    wanted = (
        func.unnest(
            *(
                bindparam(None, [values[place] for values in keys], type_=ARRAY(rows.c[name].type))
                for place, name in enumerate(key)
            )
        )
        .table_valued(*key)
        .render_derived("wanted")
    )

    def ordered(source: Any) -> list[Any]:
        columns = [source.c[name] for name in order]
        return [column.desc() for column in columns] if descending else columns

    page = (
        select(rows)
        .where(*(rows.c[name] == wanted.c[name] for name in key), *where)
        .order_by(*ordered(rows))
        .limit(literal_column(str(int(first) + 1)))
        .lateral("page")
    )
    statement = select(page).select_from(wanted.join(page, true())).order_by(*ordered(page))
    grouped: dict[tuple[Any, ...], list[Record]] = {tuple(values): [] for values in keys}
    for row in await connection.execute(statement):
        grouped[tuple(getattr(row, name) for name in key)].append(row)
    return {
        values: Page(rows=found[:first], has_next=len(found) > first)
        for values, found in grouped.items()
    }
