"""Indicators, their targets and reported realisations (planning figures, not records)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, literal_column, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import INDICATORS, REALISATIONS, TARGETS
from db.queries import Record, any_of
from db.queries.paging import Page

TargetKey = tuple[str, str, int]
_KEY = ("indicator_code", "jurisdiction", "year")


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
    whether older ones follow, in one statement. Reports are only ever added, so a target's
    history grows with every one: each key's rows are read from the lookup index until one past
    the page, rather than all of them. The keys go as three arrays (one statement text for any
    batch) and the size is written into the SQL, as participants_of does."""
    wanted = (
        func.unnest(
            *(
                bindparam(
                    None, [key[place] for key in keys], type_=ARRAY(REALISATIONS.c[name].type)
                )
                for place, name in enumerate(_KEY)
            )
        )
        .table_valued(*_KEY)
        .render_derived("wanted")
    )
    latest = (
        select(REALISATIONS)
        .where(*(REALISATIONS.c[name] == wanted.c[name] for name in _KEY))
        .order_by(REALISATIONS.c.recorded_at.desc(), REALISATIONS.c.id.desc())
        .limit(literal_column(str(int(first) + 1)))
        .lateral("latest")
    )
    statement = (
        select(latest)
        .select_from(wanted.join(latest, true()))
        .order_by(latest.c.recorded_at.desc(), latest.c.id.desc())
    )
    grouped: dict[TargetKey, list[Record]] = {key: [] for key in keys}
    for row in await connection.execute(statement):
        grouped[(row.indicator_code, row.jurisdiction, row.year)].append(row)
    return {
        key: Page(rows=rows[:first], has_next=len(rows) > first) for key, rows in grouped.items()
    }


async def add_realisation(connection: AsyncConnection, values: dict[str, object]) -> Record:
    """Reports are appended, never overwritten: the latest is the value, the rest its history."""
    statement = REALISATIONS.insert().values(**values).returning(REALISATIONS)
    added: Record = (await connection.execute(statement)).one()
    return added
