"""The reference data the record rules consult: KBLI sections and the known regency codes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import KBLI_SECTIONS, REGIONS
from domain.identifiers import KbliSection
from domain.records import Vocabulary


async def load(connection: AsyncConnection, *, today: date) -> Vocabulary:
    """Today's regency and city codes; the NIK rule adds the codes splits have retired."""
    sections = [
        KbliSection(row.section, row.title, row.first_division, row.last_division)
        for row in await connection.execute(select(KBLI_SECTIONS))
    ]
    regencies = frozenset(
        code
        for code in (
            await connection.execute(
                select(REGIONS.c.code).where(REGIONS.c.level.in_(("regency", "city")))
            )
        ).scalars()
    )
    return Vocabulary(kbli_sections=sections, regencies=regencies, today=today)


async def existing_regions(connection: AsyncConnection, codes: Collection[str]) -> set[str]:
    statement = select(REGIONS.c.code).where(REGIONS.c.code.in_(list(codes)))
    return set((await connection.execute(statement)).scalars())
