"""Region reference data (Kemendagri codes). Public: not scoped to a jurisdiction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db import models
from db.models import table_of
from db.queries import Record, any_of

REGIONS = table_of(models.Region)


async def by_codes(connection: AsyncConnection, codes: Sequence[str]) -> dict[str, Record]:
    statement = select(REGIONS).where(any_of(REGIONS.c.code, codes))
    return {row.code: row for row in await connection.execute(statement)}


async def children_of(
    connection: AsyncConnection, parent_codes: Sequence[str]
) -> dict[str, list[Record]]:
    statement = (
        select(REGIONS).where(any_of(REGIONS.c.parent_code, parent_codes)).order_by(REGIONS.c.code)
    )
    grouped: dict[str, list[Record]] = {code: [] for code in parent_codes}
    for row in await connection.execute(statement):
        grouped[row.parent_code].append(row)
    return grouped
