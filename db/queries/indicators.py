"""Indicators, their targets and reported realisations (planning figures, not records)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import INDICATORS, REALISATIONS, TARGETS
from db.queries import Record, any_of
from db.queries.paging import Page, first_rows_by_key

TargetKey = tuple[str, str, int]


async def all_indicators(connection: AsyncConnection) -> list[Record]:
    return list(await connection.execute(select(INDICATORS).order_by(INDICATORS.c.code)))


async def by_codes(connection: AsyncConnection, codes: Sequence[str]) -> dict[str, Record]:
    statement = select(INDICATORS).where(any_of(INDICATORS.c.code, codes))
    return {row.code: row for row in await connection.execute(statement)}


async def targets_of(
    connection: AsyncConnection, indicator_codes: Sequence[str]
) -> dict[str, list[Record]]:
    statement = (
        select(TARGETS)
        .where(any_of(TARGETS.c.indicator_code, indicator_codes))
        .order_by(TARGETS.c.indicator_code, TARGETS.c.jurisdiction, TARGETS.c.year)
    )
    grouped: dict[str, list[Record]] = {code: [] for code in indicator_codes}
    for row in await connection.execute(statement):
        grouped[row.indicator_code].append(row)
    return grouped


async def realisations_of(
    connection: AsyncConnection, keys: Sequence[TargetKey], *, first: int
) -> dict[TargetKey, Page]:
    """The latest `first` reports for each (indicator, jurisdiction, year), newest first, and
    whether older ones follow: reports are only ever added, so a reader gets a page of them."""
    pages = await first_rows_by_key(
        connection,
        REALISATIONS,
        ("indicator_code", "jurisdiction", "year"),
        keys,
        order=("recorded_at", "id"),
        descending=True,
        first=first,
    )
    return {(code, jurisdiction, year): page for (code, jurisdiction, year), page in pages.items()}


async def add_realisation(connection: AsyncConnection, values: dict[str, object]) -> Record:
    """Reports are appended, never overwritten: the latest is the value, the rest its history."""
    statement = REALISATIONS.insert().values(**values).returning(REALISATIONS)
    added: Record = (await connection.execute(statement)).one()
    return added
