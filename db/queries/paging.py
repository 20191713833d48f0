"""Keyset pages over a table's primary key: stable under inserts and O(page) at any depth."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries import Record


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Record]
    has_next: bool


def columns_of(table: Table, names: Collection[str]) -> list[Any]:
    """The requested columns plus the key, so unrequested columns are never fetched."""
    return [table.c[name] for name in sorted({"id", *names})]


async def fetch_page(
    connection: AsyncConnection,
    table: Table,
    *,
    columns: Collection[str],
    where: Sequence[ColumnElement[bool]],
    first: int,
    after: int | None,
) -> Page:
    statement: Select[Any] = select(*columns_of(table, columns)).where(*where)
    if after is not None:
        statement = statement.where(table.c.id > after)
    rows = (await connection.execute(statement.order_by(table.c.id).limit(first + 1))).all()
    return Page(rows=rows[:first], has_next=len(rows) > first)


async def count(
    connection: AsyncConnection, table: Table, where: Sequence[ColumnElement[bool]]
) -> int:
    statement = select(func.count()).select_from(table).where(*where)
    return int((await connection.execute(statement)).scalar_one())
