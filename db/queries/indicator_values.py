"""Indicators computed live from the records, for every jurisdiction a page of targets names.

Three grouped statements (cooperatives, MSMEs, graduations) answer any number of
(indicator, jurisdiction, year) keys: one row per province and regency, plus the nation.
Stock indicators describe the register as it is now; graduations count the given year.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Numeric, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db import models
from db.models import table_of
from db.queries.aggregates import graduation_source

COOPERATIVES = table_of(models.Cooperative)
MSMES = table_of(models.Msme)
Key = tuple[str, str, int]

_NATION: ColumnElement[Any] = literal_column(
    "()"
)  # the empty grouping set: one row for the whole country
_PRODUCER = COOPERATIVES.c.type == "produsen"
_ACTIVE_COOPERATIVE = COOPERATIVES.c.status == "active"


def _percent(part: ColumnElement[Any], whole: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.round(cast(part, Numeric) * 100 / func.nullif(whole, 0), 2)


COOPERATIVE_INDICATORS: dict[str, ColumnElement[Any]] = {
    "KOP_PRODUSEN_JUMLAH": func.count().filter(_PRODUCER & _ACTIVE_COOPERATIVE),
    "KOP_PRODUKSI_VOLUME": func.coalesce(
        func.sum(COOPERATIVES.c.business_volume).filter(_PRODUCER), 0
    ),
    "KOP_JUMLAH": func.count(),
    "KOP_TIDAK_AKTIF": func.count().filter(~_ACTIVE_COOPERATIVE),
    "KOP_AKTIF_PERSEN": _percent(func.count().filter(_ACTIVE_COOPERATIVE), func.count()),
}
MSME_INDICATORS: dict[str, ColumnElement[Any]] = {
    "UMKM_JUMLAH": func.count(),
    "UKM_PROPORSI": _percent(
        func.count().filter(MSMES.c.scale.in_(("small", "medium"))), func.count()
    ),
}
GRADUATION_INDICATOR = "MIKRO_NAIK_KELAS"
COMPUTABLE = frozenset({*COOPERATIVE_INDICATORS, *MSME_INDICATORS, GRADUATION_INDICATOR})


def _place(row: Any) -> str:
    return str(row.regency or row.province or "ID")


async def _by_place(
    connection: AsyncConnection, table: Any, indicators: dict[str, ColumnElement[Any]], where: Any
) -> dict[tuple[str, str], Any]:
    statement = (
        select(
            table.c.province_code.label("province"),
            table.c.regency_code.label("regency"),
            *[expression.label(code) for code, expression in indicators.items()],
        )
        .where(where)
        .group_by(func.grouping_sets(table.c.province_code, table.c.regency_code, _NATION))
    )
    found: dict[tuple[str, str], Any] = {}
    for row in await connection.execute(statement):
        for code in indicators:
            found[(code, _place(row))] = getattr(row, code)
    return found


async def computed(connection: AsyncConnection, keys: Sequence[Key]) -> dict[Key, Decimal | None]:
    codes = {code for code, _, _ in keys}
    values: dict[tuple[str, str], Any] = {}
    if codes & COOPERATIVE_INDICATORS.keys():
        values |= await _by_place(
            connection, COOPERATIVES, COOPERATIVE_INDICATORS, COOPERATIVES.c.status != "dissolved"
        )
    if codes & MSME_INDICATORS.keys():
        values |= await _by_place(connection, MSMES, MSME_INDICATORS, MSMES.c.is_active)
    graduations: dict[tuple[str, int], int] = {}
    for year in sorted({year for code, _, year in keys if code == GRADUATION_INDICATOR}):
        source, _ = graduation_source(year)
        statement = (
            select(
                MSMES.c.province_code.label("province"),
                MSMES.c.regency_code.label("regency"),
                func.count().label("graduated"),
            )
            .select_from(source)
            .group_by(func.grouping_sets(MSMES.c.province_code, MSMES.c.regency_code, _NATION))
        )
        for row in await connection.execute(statement):
            graduations[(_place(row), year)] = row.graduated
    result: dict[Key, Decimal | None] = {}
    for code, jurisdiction, year in keys:
        value: Any
        if code == GRADUATION_INDICATOR:
            value = graduations.get((jurisdiction, year), 0)
        else:
            value = values.get((code, jurisdiction))
        result[(code, jurisdiction, year)] = None if value is None else Decimal(value)
    return result
