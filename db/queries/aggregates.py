"""Grouped figures computed by PostgreSQL: GROUP BY CUBE gives every total and subtotal at once.

Each dimension is an SQL expression; GROUPING() tells a total from a group whose value is NULL.
Values come back as strings (None = "total over this dimension") so the suppression rule and
the schema handle every dimension alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, case, cast, extract, func, literal, select
from sqlalchemy import Integer as SqlInteger
from sqlalchemy.ext.asyncio import AsyncConnection

from db import models
from db.models import table_of

MSMES = table_of(models.Msme)
COOPERATIVES = table_of(models.Cooperative)
PARTICIPATIONS = table_of(models.Participation)
SCALE_HISTORY = table_of(models.MsmeScaleHistory)
UNKNOWN = "unknown"

MSME_DIMENSIONS: Mapping[str, ColumnElement[Any]] = {
    "province": MSMES.c.province_code,
    "regency": MSMES.c.regency_code,
    "scale": MSMES.c.scale,
    "kbli_section": MSMES.c.kbli_section,
    "active": MSMES.c.is_active,
    "established_year": cast(extract("year", MSMES.c.established_on), SqlInteger),
}
MSME_MEASURES: Mapping[str, ColumnElement[Any]] = {
    "count": func.count(),
    "turnover_sum": func.sum(MSMES.c.annual_turnover),
    "turnover_average": func.round(func.avg(MSMES.c.annual_turnover)),
    "capital_sum": func.sum(MSMES.c.capital),
    "employees_sum": func.sum(MSMES.c.employees),
}
COOPERATIVE_DIMENSIONS: Mapping[str, ColumnElement[Any]] = {
    "province": COOPERATIVES.c.province_code,
    "regency": COOPERATIVES.c.regency_code,
    "type": COOPERATIVES.c.type,
    "status": COOPERATIVES.c.status,
    "book_year": COOPERATIVES.c.book_year,
}
COOPERATIVE_MEASURES: Mapping[str, ColumnElement[Any]] = {
    "count": func.count(),
    "business_volume_sum": func.sum(COOPERATIVES.c.business_volume),
    "business_volume_average": func.round(func.avg(COOPERATIVES.c.business_volume)),
    "assets_sum": func.sum(COOPERATIVES.c.assets),
    "members_sum": func.sum(COOPERATIVES.c.members_male + COOPERATIVES.c.members_female),
}


@dataclass(frozen=True, slots=True)
class GroupRow:
    key: tuple[str | None, ...]
    measures: dict[str, Any]


def _as_key(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def grouped(
    connection: AsyncConnection,
    source: FromClause,
    dimensions: Mapping[str, ColumnElement[Any]],
    measures: Mapping[str, ColumnElement[Any]],
    *,
    group_by: Sequence[str],
    where: Sequence[ColumnElement[bool]],
) -> list[GroupRow]:
    """One statement: every combination of `group_by` totals (CUBE), filtered by `where`."""
    chosen = [dimensions[name] for name in group_by]
    flags = [func.grouping(expression) for expression in chosen]
    statement = (
        select(
            *[expression.label(f"d{index}") for index, expression in enumerate(chosen)],
            *[flag.label(f"g{index}") for index, flag in enumerate(flags)],
            *[expression.label(name) for name, expression in measures.items()],
        )
        .select_from(source)
        .where(*where)
    )
    if chosen:
        statement = statement.group_by(func.cube(*chosen))
    rows: list[GroupRow] = []
    for row in await connection.execute(statement):
        mapping = row._mapping
        key = tuple(
            None if mapping[f"g{index}"] else _as_key(mapping[f"d{index}"])
            for index in range(len(chosen))
        )
        rows.append(GroupRow(key=key, measures={name: mapping[name] for name in measures}))
    return rows


def graduation_source(year: int) -> tuple[FromClause, Mapping[str, ColumnElement[Any]]]:
    """MSMEs whose scale rose in `year` ("naik kelas": micro to small or medium, small to medium).

    The previous scale is the one in force before the change (LAG over the effective-dated
    history), so a business counts once per upward step.
    """
    previous = func.lag(SCALE_HISTORY.c.scale).over(
        partition_by=SCALE_HISTORY.c.msme_id, order_by=SCALE_HISTORY.c.effective_from
    )
    changes = select(
        SCALE_HISTORY.c.msme_id,
        SCALE_HISTORY.c.scale,
        SCALE_HISTORY.c.effective_from,
        previous.label("previous_scale"),
    ).subquery()
    rank = case({"micro": 1, "small": 2, "medium": 3}, value=changes.c.scale, else_=0)
    before = case({"micro": 1, "small": 2, "medium": 3}, value=changes.c.previous_scale, else_=9)
    upward = (
        select(changes.c.msme_id, changes.c.previous_scale, changes.c.scale.label("new_scale"))
        .where(
            extract("year", changes.c.effective_from) == year,
            rank > before,
            rank <= literal(3),
        )
        .subquery()
    )
    source = upward.join(MSMES, and_(MSMES.c.id == upward.c.msme_id))
    dimensions = {
        "province": MSMES.c.province_code,
        "regency": MSMES.c.regency_code,
        "from_scale": upward.c.previous_scale,
        "to_scale": upward.c.new_scale,
    }
    return source, dimensions
