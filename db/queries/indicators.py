"""Indicators, their targets and reported realisations (planning figures, not records)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import INDICATORS, REALISATIONS, TARGETS
from db.queries import Record, any_of

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
    connection: AsyncConnection, keys: Sequence[TargetKey]
) -> dict[TargetKey, list[Record]]:
    """Every report for each (indicator, jurisdiction, year), newest first: history is kept."""
    columns = (REALISATIONS.c.indicator_code, REALISATIONS.c.jurisdiction, REALISATIONS.c.year)
    statement = (
        select(REALISATIONS)
        .where(tuple_(*columns).in_(list(keys)))
        .order_by(REALISATIONS.c.recorded_at.desc(), REALISATIONS.c.id.desc())
    )
    grouped: dict[TargetKey, list[Record]] = {key: [] for key in keys}
    for row in await connection.execute(statement):
        grouped[(row.indicator_code, row.jurisdiction, row.year)].append(row)
    return grouped


async def add_realisation(connection: AsyncConnection, values: dict[str, object]) -> Record:
    """Reports are appended, never overwritten: the latest is the value, the rest its history."""
    statement = REALISATIONS.insert().values(**values).returning(REALISATIONS)
    added: Record = (await connection.execute(statement)).one()
    return added
