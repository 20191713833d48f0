"""Grouped figures computed by PostgreSQL: GROUP BY CUBE gives every total and subtotal at once.

Each dimension is an SQL expression; GROUPING() tells a total from a group whose value is NULL.
Values come back as strings (None = "total over this dimension") so the suppression rule and
the schema handle every dimension alike. Measures are what disclosure control needs of a cell
(`record_measures`), all whole numbers; what is published is decided by resolvers/aggregates.py.

MSME and cooperative figures read a rollup (db/models.py, kept exact by the triggers of
migrations 0006, 0012, 0016 and 0050) when one holds every dimension the grouping and the
filter name: the smallest such rollup, so national figures group a few thousand cells however
many records there are. Filters a rollup cannot answer (programme, cooperative, district) read
the records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Numeric,
    Table,
    case,
    cast,
    extract,
    func,
    select,
    tuple_,
)
from sqlalchemy import Integer as SqlInteger
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import (
    COOPERATIVE_ROLLUP_PROVINCE,
    COOPERATIVE_ROLLUP_REGENCY,
    COOPERATIVES,
    MSME_ROLLUP_PROVINCE_KBLI,
    MSME_ROLLUP_PROVINCE_YEAR,
    MSME_ROLLUP_REGENCY,
    MSME_ROLLUP_REGENCY_KBLI,
    MSME_SCALE_HISTORY,
    MSMES,
)
from db.queries import cooperatives, msmes
from db.queries.scoping import EVERYWHERE, NATIONAL
from domain.cellkey import FOLLOWS
from domain.scale import CORRECTIONS, GRADUATIONS, Scale, Step

UNKNOWN = "unknown"

MSME_DIMENSIONS: Mapping[str, ColumnElement[Any]] = {
    "province": MSMES.c.province_code,
    "regency": MSMES.c.regency_code,
    "scale": MSMES.c.scale,
    "kbli_section": MSMES.c.kbli_section,
    "active": MSMES.c.is_active,
    "established_year": cast(extract("year", MSMES.c.established_on), SqlInteger),
}
MSME_SUMS: Mapping[str, ColumnElement[Any]] = {
    "turnover": MSMES.c.annual_turnover,
    "capital": MSMES.c.capital,
    "employees": MSMES.c.employees,
}
COOPERATIVE_DIMENSIONS: Mapping[str, ColumnElement[Any]] = {
    "province": COOPERATIVES.c.province_code,
    "regency": COOPERATIVES.c.regency_code,
    "type": COOPERATIVES.c.type,
    "status": COOPERATIVES.c.status,
    "book_year": COOPERATIVES.c.book_year,
}
COOPERATIVE_SUMS: Mapping[str, ColumnElement[Any]] = {
    "business_volume": COOPERATIVES.c.business_volume,
    "assets": COOPERATIVES.c.assets,
    "members": COOPERATIVES.c.members_male + COOPERATIVES.c.members_female,
}


def contributes(value: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether a record's `value` adds to its sum: neither missing nor zero. A sum's noise is
    keyed on these records alone (domain.cellkey.Summed), so cells that differ only by records
    adding nothing to it publish the same sum, not another reading of it."""
    return value != 0  # NULL <> 0 is NULL: a missing value does not contribute either


def record_measures(
    key: ColumnElement[Any], sums: Mapping[str, ColumnElement[Any]]
) -> dict[str, ColumnElement[Any]]:
    """What disclosure control needs of a cell read from the records: its count and key sum,
    and per summed measure how many records have a value and their key sum, their sum and sum
    of squares, the key sum of its contributors (`contributes`), and for one that follows
    another (domain.cellkey.FOLLOWS) the sum of their products."""
    measures: dict[str, ColumnElement[Any]] = {
        "count": func.count(),
        "key_sum": func.coalesce(func.sum(key), 0),
    }
    for name, value in sums.items():
        measures[f"{name}_n"] = func.count(value)
        measures[f"{name}_sum"] = func.coalesce(func.sum(value), 0)
        measures[f"{name}_squares"] = func.coalesce(func.sum(cast(value, Numeric) * value), 0)
        measures[f"{name}_key_sum"] = func.coalesce(func.sum(key).filter(contributes(value)), 0)
        measures[f"{name}_valued_key_sum"] = func.coalesce(
            func.sum(key).filter(value.is_not(None)), 0
        )
        if name in FOLLOWS:
            product = cast(value, Numeric) * sums[FOLLOWS[name]]
            measures[f"{name}_cross"] = func.coalesce(func.sum(product), 0)
    return measures


MSME_MEASURES = record_measures(MSMES.c.cell_key, MSME_SUMS)
COOPERATIVE_MEASURES = record_measures(COOPERATIVES.c.cell_key, COOPERATIVE_SUMS)
MSME_AVERAGES = ("turnover",)
COOPERATIVE_AVERAGES = ("business_volume",)


@dataclass(frozen=True, slots=True)
class Figures:
    """What one grouped statement reads: rows, the expressions of dimensions and measures over
    them, and the filter as WHERE clauses over the same rows."""

    source: FromClause
    dimensions: Mapping[str, ColumnElement[Any]]
    measures: Mapping[str, ColumnElement[Any]]
    where: Sequence[ColumnElement[bool]]
    sums: tuple[str, ...] = ()
    """The summed measures (each read as `<name>_n`, `<name>_sum`, `<name>_squares`,
    `<name>_key_sum`, `<name>_valued_key_sum`, and `<name>_cross` for one that follows
    another)."""
    averages: tuple[str, ...] = ()
    """The summed measures also published as averages."""
    members_only: bool = False
    """The rows are the members of something only readers of the records may list (a
    programme's participants; disclosure control then publishes no hidden cell)."""


# Rollup column of each dimension (all rollups name their key columns like the base tables).
ROLLUP_COLUMNS = {
    "province": "province_code",
    "regency": "regency_code",
    "scale": "scale",
    "kbli_section": "kbli_section",
    "active": "is_active",
    "established_year": "established_year",
    "type": "type",
    "status": "status",
    "book_year": "book_year",
}


def _rollup_measures(table: Table, sums: Sequence[str]) -> dict[str, ColumnElement[Any]]:
    """The measures of `record_measures`, added up over rollup cells. A rollup without
    `<name>_n` holds measures no record lacks, so every record counts, and has a value."""
    columns = table.c
    measures: dict[str, ColumnElement[Any]] = {
        "count": func.coalesce(func.sum(columns.n), 0),
        "key_sum": func.coalesce(func.sum(columns.cell_key_sum), 0),
    }
    for name in sums:
        counted = columns.get(f"{name}_n", columns.n)
        valued = columns.get(f"{name}_valued_key_sum", columns.cell_key_sum)
        measures[f"{name}_n"] = func.coalesce(func.sum(counted), 0)
        measures[f"{name}_sum"] = func.coalesce(func.sum(columns[f"{name}_sum"]), 0)
        measures[f"{name}_squares"] = func.coalesce(func.sum(columns[f"{name}_squares"]), 0)
        measures[f"{name}_key_sum"] = func.coalesce(func.sum(columns[f"{name}_key_sum"]), 0)
        measures[f"{name}_valued_key_sum"] = func.coalesce(func.sum(valued), 0)
    return measures


@dataclass(frozen=True, slots=True)
class Rollup:
    table: Table
    measures: Mapping[str, ColumnElement[Any]]

    @property
    def dimensions(self) -> dict[str, ColumnElement[Any]]:
        columns = self.table.c
        return {
            name: columns[column] for name, column in ROLLUP_COLUMNS.items() if column in columns
        }


# Smallest first: the first rollup holding every dimension asked for is the one read.
MSME_ROLLUPS = tuple(
    Rollup(table, _rollup_measures(table, list(MSME_SUMS)))
    for table in (
        MSME_ROLLUP_REGENCY,
        MSME_ROLLUP_PROVINCE_KBLI,
        MSME_ROLLUP_PROVINCE_YEAR,
        MSME_ROLLUP_REGENCY_KBLI,
    )
)
COOPERATIVE_ROLLUPS = tuple(
    Rollup(table, _rollup_measures(table, list(COOPERATIVE_SUMS)))
    for table in (COOPERATIVE_ROLLUP_PROVINCE, COOPERATIVE_ROLLUP_REGENCY)
)


def region_dimension(region: str | None) -> str | None:
    """The dimension a region filter needs; "district" is in no rollup."""
    if region is None or region == NATIONAL:
        return None
    return {2: "province", 5: "regency"}.get(len(region), "district")


def _smallest(
    rollups: Sequence[Rollup], needed: set[str], filters: Mapping[str, Any]
) -> Figures | None:
    for rollup in rollups:
        dimensions = rollup.dimensions
        if needed <= dimensions.keys():
            where = [dimensions[name] == value for name, value in filters.items()]
            return Figures(rollup.table, dimensions, rollup.measures, where)
    return None


def _rollup_figures(
    rollups: Sequence[Rollup],
    group_by: Sequence[str],
    region: str | None,
    filters: Mapping[str, Any],
) -> Figures | None:
    given = {name: value for name, value in filters.items() if value is not None}
    dimension = region_dimension(region)
    if dimension is not None:
        given[dimension] = region
    return _smallest(rollups, {*group_by, *given}, given)


def msme_figures(where: msmes.MsmeFilter, group_by: Sequence[str]) -> Figures:
    """National figures for `where`: from the smallest rollup that can answer, else the records.

    A table by or of a scale is one of members, as a programme's is: a scale is its owner's
    finances (domain.personal.OWNER_FINANCES), and a cell's key alone said the turnover band
    of the lone business of a regency and KBLI section, which the public NIB register names."""
    figures = Figures(
        MSMES, MSME_DIMENSIONS, MSME_MEASURES, msmes.conditions(EVERYWHERE, where, figures=True)
    )
    if where.programme is None and where.cooperative_id is None:
        filters = {"scale": where.scale, "kbli_section": where.kbli_section, "active": where.active}
        figures = _rollup_figures(MSME_ROLLUPS, group_by, where.region, filters) or figures
    members_only = where.members_only or where.scale is not None or "scale" in group_by
    return replace(
        figures, sums=tuple(MSME_SUMS), averages=MSME_AVERAGES, members_only=members_only
    )


def cooperative_figures(where: cooperatives.CooperativeFilter, group_by: Sequence[str]) -> Figures:
    figures = Figures(
        COOPERATIVES,
        COOPERATIVE_DIMENSIONS,
        COOPERATIVE_MEASURES,
        cooperatives.conditions(EVERYWHERE, where, figures=True),
    )
    if where.programme is None:
        filters: dict[str, Any] = {"type": where.type}
        rollup = _rollup_figures(COOPERATIVE_ROLLUPS, group_by, where.region, filters)
        if rollup is not None:
            figures = rollup
            if where.active is not None:
                status = figures.dimensions["status"] == "active"
                figures = replace(
                    figures, where=[*figures.where, status if where.active else ~status]
                )
    return replace(
        figures,
        sums=tuple(COOPERATIVE_SUMS),
        averages=COOPERATIVE_AVERAGES,
        members_only=where.members_only,
    )


class TooManyCells(Exception):
    """A grouped table has more cells than it may (`grouped`'s `at_most`, its argument)."""


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A cell: its key and measures and, when `grouped` was told which records are the caller's
    own, those records' measures apart (`own`; `measures` then holds the others')."""

    key: tuple[str | None, ...]
    measures: dict[str, Any]
    own: dict[str, Any] | None = None


def _as_key(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def inside_region(figures: Figures, region: str) -> ColumnElement[bool]:
    """The rows of `figures` in `region`, which must be among its dimensions (`region_dimension`
    names the one it needs)."""
    return figures.dimensions[str(region_dimension(region))] == region


async def grouped(
    connection: AsyncConnection,
    figures: Figures,
    *,
    group_by: Sequence[str],
    own: ColumnElement[bool] | None = None,
    at_most: int | None = None,
) -> list[GroupRow]:
    """One statement: every combination of `group_by` totals (CUBE), filtered by `where`.
    TooManyCells when there are more than `at_most` cells, of which no more rows are read than
    tell so (a cell whose measures come in two parts is two rows): the cube of four dimensions
    has millions of cells, and the guard's estimate caps what a table costs, not what it reads.

    `own`: which of the rows are the caller's own (resolvers/policy.py decides), over the
    columns of `figures`; each cell's measures then come in two parts, those rows and the others
    (grouped by the condition too, NULL counting as false), for disclosure control to key each
    part's noise on its own records.
    """
    measures = figures.measures
    chosen = [figures.dimensions[name] for name in group_by]
    flags = [func.grouping(expression) for expression in chosen]
    inside = None if own is None else func.coalesce(own, False)
    grouping: list[ColumnElement[Any]] = [func.cube(*chosen)] if chosen else []
    if inside is not None:
        grouping.append(inside)
    statement = (
        select(
            *[expression.label(f"d{index}") for index, expression in enumerate(chosen)],
            *[flag.label(f"g{index}") for index, flag in enumerate(flags)],
            *([] if inside is None else [inside.label("inside")]),
            *[expression.label(name) for name, expression in measures.items()],
        )
        .select_from(figures.source)
        .where(*figures.where)
        .group_by(*grouping)
    )
    most_rows = None if at_most is None else at_most * (1 if inside is None else 2)
    if most_rows is not None:
        # Limited outside a MATERIALIZED CTE, which PostgreSQL plans as though every row were
        # read: a LIMIT on the statement itself chose another plan, and the cells came in
        # another order than the same table's without one.
        cells_cte = statement.cte("cells").prefix_with("MATERIALIZED")
        statement = select(*cells_cte.c).limit(most_rows + 1)
    # By position (d0.., g0.., the flag, then the measures): a national table has thousands of
    # cells.
    width = len(chosen)
    first = 2 * width + (inside is not None)
    names = list(measures)
    cells: dict[tuple[str | None, ...], GroupRow] = {}
    rows = (await connection.execute(statement)).all()
    if most_rows is not None and len(rows) > most_rows:
        raise TooManyCells(at_most)
    for row in rows:
        key = tuple(None if row[width + i] else _as_key(row[i]) for i in range(width))
        values = dict(zip(names, (int(value) for value in row[first:]), strict=True))
        if inside is None:
            cells[key] = GroupRow(key, values)
            continue
        cell = cells.setdefault(
            key, GroupRow(key, dict.fromkeys(names, 0), dict.fromkeys(names, 0))
        )
        target = cell.own if row[2 * width] else cell.measures
        assert target is not None
        target.update(values)
    if inside is not None and not cells:
        # Grouped by the flag too, no grouping set is empty, so no rows give no total: the
        # zero one the statement would give otherwise.
        key = (None,) * width
        cells[key] = GroupRow(key, dict.fromkeys(names, 0), dict.fromkeys(names, 0))
    if at_most is not None and len(cells) > at_most:
        raise TooManyCells(at_most)
    return list(cells.values())


def graduation_source(
    year: int, steps: frozenset[Step] = GRADUATIONS
) -> tuple[FromClause, Mapping[str, ColumnElement[Any]]]:
    """MSMEs whose scale rose in `year` by one of `steps` ("naik kelas", domain/scale.py), one row
    each. The steps: every step up within the MSME scales for the `graduations` figures, those
    from micro only for the MIKRO_NAIK_KELAS indicator.

    A business counts once a year however many steps it took (the indicator counts enterprises,
    and disclosure control's threshold must count businesses, not steps), in the cell of the
    lowest scale it rose from and the highest it rose to that year: micro to small then small to
    medium is one graduate from micro to medium. Where it stands at the year's end does not
    matter: one that fell back after rising still rose.

    The previous scale is the one in force before the change (LAG over the effective-dated
    history). The table's rows are enough: an imported record's first entry is read from its
    batch only until its scale or figures first change, when it becomes a row (migration 0016),
    and a graduation is a change. A correction (domain/scale.py CORRECTIONS) is a step of the
    history, from which the next one is counted, but no graduation.

    A change counts in the year of the sales it was computed from (`graduation_year`), not the
    year it took effect: a report in February of last year's sales is last year's growth.
    """
    previous = func.lag(MSME_SCALE_HISTORY.c.scale).over(
        partition_by=MSME_SCALE_HISTORY.c.msme_id, order_by=MSME_SCALE_HISTORY.c.effective_from
    )
    changes = select(
        MSME_SCALE_HISTORY.c.msme_id,
        MSME_SCALE_HISTORY.c.scale,
        graduation_year(MSME_SCALE_HISTORY).label("year"),
        MSME_SCALE_HISTORY.c.rule_version,
        previous.label("previous_scale"),
    ).subquery()
    graduates = (
        select(
            changes.c.msme_id,
            _scale_of(func.min(_size(changes.c.previous_scale))).label("from_scale"),
            _scale_of(func.max(_size(changes.c.scale))).label("to_scale"),
        )
        .where(
            changes.c.year == year,
            changes.c.rule_version.not_in(sorted(CORRECTIONS)),
            tuple_(changes.c.previous_scale, changes.c.scale).in_(
                sorted((str(before), str(after)) for before, after in steps)
            ),
        )
        .group_by(changes.c.msme_id)
        .subquery()
    )
    source = graduates.join(MSMES, MSMES.c.id == graduates.c.msme_id)
    dimensions = {
        "province": MSMES.c.province_code,
        "regency": MSMES.c.regency_code,
        "from_scale": graduates.c.from_scale,
        "to_scale": graduates.c.to_scale,
    }
    return source, dimensions


def graduation_year(history: Table) -> ColumnElement[Any]:
    """The year a scale history entry counts in: that of the annual sales it was computed from
    (domain: naik kelas in t is micro in t-1 and small or medium in t, by each year's sales);
    the year it took effect where that is not known (no sales, or written before migration
    0055 kept the year). An integer, as the year asked is: typed as the stored smallint, the
    year asked went as one, and a year past 32767 failed to send rather than match nothing."""
    return func.coalesce(
        history.c.turnover_year,
        cast(extract("year", history.c.effective_from), SqlInteger),
        type_=SqlInteger,
    )


def _size(scale: ColumnElement[Any]) -> ColumnElement[Any]:
    """A scale's place in `Scale` (smallest first), for the lowest and highest to be taken."""
    return case({str(member): size for size, member in enumerate(Scale)}, value=scale)


def _scale_of(size: ColumnElement[Any]) -> ColumnElement[Any]:
    """The scale at `size` (`_size`'s inverse)."""
    return case(dict(enumerate(map(str, Scale))), value=size)
