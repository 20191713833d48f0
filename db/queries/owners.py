"""Owners' personal data. The only module that reads `msme_owners`; called only when a client
holds `pii:read` and asked for an owner field, so other queries never touch the table."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import MSME_OWNERS
from db.queries import Record, any_of


async def of_msmes(
    connection: AsyncConnection, msme_ids: Sequence[int], columns: Collection[str]
) -> dict[int, Record]:
    selected = [MSME_OWNERS.c[name] for name in sorted({"msme_id", *columns})]
    statement = select(*selected).where(any_of(MSME_OWNERS.c.msme_id, msme_ids))
    return {row.msme_id: row for row in await connection.execute(statement)}
