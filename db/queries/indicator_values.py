"""Indicators computed live from the records, for every jurisdiction a page of targets names.

Three grouped statements (cooperatives, MSMEs, graduations) answer any number of
(indicator, jurisdiction, year) keys: one row per province and regency, plus the nation.
Stock indicators describe the register as it is now; the production volume is a flow, the
volume of the target's book year; graduations count the given year, from micro only
(domain/scale.py MICRO_GRADUATIONS).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Numeric, cast, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, MSMES
from db.queries.aggregates import contributes, graduation_source
from domain.cellkey import Summed
from domain.scale import MICRO_GRADUATIONS, MSME_SCALES, Scale
from domain.suppression import Tally

Key = tuple[str, str, int]

_NATION: ColumnElement[Any] = literal_column(
    "()"
)  # the empty grouping set: one row for the whole country
_PRODUCER = COOPERATIVES.c.type == "produsen"
_ACTIVE_COOPERATIVE = COOPERATIVES.c.status == "active"
VOLUME = "business_volume"


@dataclass(frozen=True, slots=True)
class Formula:
    """An indicator as published figures: a count of a subset of records, the sum of a measure
    over one, or one count as a percentage of another (subsets name keys of the maps below)."""

    kind: Literal["count", "total", "share"]
    subsets: tuple[str, ...]
    measure: str = ""
    members_only: bool = False
    """A count of members (a share's part), published as a table of members publishes a cell
    (`graduations`' rule, domain.suppression.publish): the year's graduates; the MSMEs, and the
    small and medium businesses, a scale being its owner's finances, as a table by scale
    publishes them (no MSME beside a few large enterprises told their scale)."""


@dataclass(frozen=True, slots=True)
class Computed:
    formula: Formula
    tallies: tuple[Tally, ...]


# Subsets of the cooperatives that are not dissolved, and of the active businesses of every
# scale: UMKM_JUMLAH counts the MSMEs (micro, small and medium; a large enterprise in the
# register is no MSME), UKM_PROPORSI's whole is every business unit, a large one included
# ("UK + UM ÷ all business units", docs/domain.md).
COOPERATIVE_SUBSETS: dict[str, ColumnElement[bool]] = {
    "cooperatives": true(),
    "active": _ACTIVE_COOPERATIVE,
    "inactive": ~_ACTIVE_COOPERATIVE,
    "active_producers": _PRODUCER & _ACTIVE_COOPERATIVE,
}
MSME_SUBSETS: dict[str, ColumnElement[bool]] = {
    "businesses": true(),
    "msmes": MSMES.c.scale.in_(sorted(map(str, MSME_SCALES))),
    "small_and_medium": MSMES.c.scale.in_((str(Scale.SMALL), str(Scale.MEDIUM))),
}
PRODUCERS_OF_YEAR = "producers_of_year"
"""The producer cooperatives (not dissolved, active or inactive) whose figures are of the key's
book year: the volume of a year is the one its books report, whatever the record's status now."""
GRADUATED = "graduated"
COOPERATIVE_INDICATORS = {
    "KOP_PRODUSEN_JUMLAH": Formula("count", ("active_producers",)),
    "KOP_PRODUKSI_VOLUME": Formula("total", (PRODUCERS_OF_YEAR,), VOLUME),
    "KOP_JUMLAH": Formula("count", ("cooperatives",)),
    "KOP_TIDAK_AKTIF": Formula("count", ("inactive",)),
    "KOP_AKTIF_PERSEN": Formula("share", ("active", "cooperatives")),
}
MSME_INDICATORS = {
    "UMKM_JUMLAH": Formula("count", ("msmes",), members_only=True),
    "UKM_PROPORSI": Formula("share", ("small_and_medium", "businesses"), members_only=True),
}
GRADUATION_INDICATOR = "MIKRO_NAIK_KELAS"
FORMULAS = {
    **COOPERATIVE_INDICATORS,
    **MSME_INDICATORS,
    GRADUATION_INDICATOR: Formula("count", (GRADUATED,), members_only=True),
}
COMPUTABLE = frozenset(FORMULAS)


def _of_year(subset: str, year: int) -> str:
    """A subset's name for one year's key, where the subset depends on the year."""
    return f"{subset}_{year}" if subset == PRODUCERS_OF_YEAR else subset


def _place(row: Any) -> str:
    return str(row.regency or row.province or "ID")


def _tally_columns(
    name: str, subset: ColumnElement[bool], key: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    return [
        func.count().filter(subset).label(f"{name}__count"),
        func.coalesce(func.sum(key).filter(subset), 0).label(f"{name}__key"),
    ]


def _summed_columns(
    name: str, subset: ColumnElement[bool], value: ColumnElement[Any], key: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    """A subset's measure as a figure cell reads it (`aggregates.record_measures`), its noise
    keyed on its contributors."""
    return [
        func.count(value).filter(subset).label(f"{name}__n"),
        func.coalesce(func.sum(value).filter(subset), 0).label(f"{name}__sum"),
        func.coalesce(func.sum(cast(value, Numeric) * value).filter(subset), 0).label(
            f"{name}__squares"
        ),
        func.coalesce(func.sum(key).filter(subset & contributes(value)), 0).label(
            f"{name}__key_sum"
        ),
        func.coalesce(func.sum(key).filter(subset & value.is_not(None)), 0).label(
            f"{name}__valued_key_sum"
        ),
    ]


def _tally(row: Any, name: str, summed: bool) -> Tally:
    mapping = row._mapping
    total = None
    if summed:
        total = Summed(
            int(mapping[f"{name}__n"]),
            int(mapping[f"{name}__sum"]),
            int(mapping[f"{name}__squares"]),
            int(mapping[f"{name}__key_sum"]),
            int(mapping[f"{name}__valued_key_sum"]),
        )
    return Tally(int(mapping[f"{name}__count"]), int(mapping[f"{name}__key"]), total)


async def _by_place(
    connection: AsyncConnection,
    table: Any,
    subsets: Mapping[str, ColumnElement[bool]],
    summed: Mapping[str, ColumnElement[Any]],
    where: Any,
) -> dict[tuple[str, str], Tally]:
    """Each subset's tally per province, regency and the nation; `summed` adds a measure's sum
    to the subsets it names."""
    columns = [
        column
        for name, subset in subsets.items()
        for column in [
            *_tally_columns(name, subset, table.c.cell_key),
            *(
                _summed_columns(name, subset, summed[name], table.c.cell_key)
                if name in summed
                else []
            ),
        ]
    ]
    statement = (
        select(
            table.c.province_code.label("province"),
            table.c.regency_code.label("regency"),
            *columns,
        )
        .where(where)
        .group_by(func.grouping_sets(table.c.province_code, table.c.regency_code, _NATION))
    )
    found: dict[tuple[str, str], Tally] = {}
    for row in await connection.execute(statement):
        for name in subsets:
            found[(name, _place(row))] = _tally(row, name, name in summed)
    return found


async def _graduations(connection: AsyncConnection, year: int) -> dict[tuple[str, str], Tally]:
    source, _ = graduation_source(year, MICRO_GRADUATIONS)
    statement = (
        select(
            MSMES.c.province_code.label("province"),
            MSMES.c.regency_code.label("regency"),
            *_tally_columns(GRADUATED, true(), MSMES.c.cell_key),
        )
        .select_from(source)
        .group_by(func.grouping_sets(MSMES.c.province_code, MSMES.c.regency_code, _NATION))
    )
    return {
        (GRADUATED, _place(row)): _tally(row, GRADUATED, False)
        for row in await connection.execute(statement)
    }


async def computed(connection: AsyncConnection, keys: Sequence[Key]) -> dict[Key, Computed | None]:
    """The tallies behind each key's indicator; disclosure control is the caller's to apply."""
    codes = {code for code, _, _ in keys}
    tallies: dict[tuple[str, str], Tally] = {}
    if codes & COOPERATIVE_INDICATORS.keys():
        volume_years = sorted({year for code, _, year in keys if code == "KOP_PRODUKSI_VOLUME"})
        of_year = {
            _of_year(PRODUCERS_OF_YEAR, year): _PRODUCER & (COOPERATIVES.c.book_year == year)
            for year in volume_years
        }
        tallies |= await _by_place(
            connection,
            COOPERATIVES,
            {**COOPERATIVE_SUBSETS, **of_year},
            dict.fromkeys(of_year, COOPERATIVES.c.business_volume),
            COOPERATIVES.c.status != "dissolved",
        )
    if codes & MSME_INDICATORS.keys():
        tallies |= await _by_place(connection, MSMES, MSME_SUBSETS, {}, MSMES.c.is_active)
    graduations: dict[int, dict[tuple[str, str], Tally]] = {}
    for year in sorted({year for code, _, year in keys if code == GRADUATION_INDICATOR}):
        graduations[year] = await _graduations(connection, year)
    result: dict[Key, Computed | None] = {}
    for code, jurisdiction, year in keys:
        formula = FORMULAS[code]
        if code == GRADUATION_INDICATOR:  # none, exact; perturbed, as hidden as too few
            found = graduations[year]
            empty: Tally | None = Tally(0, 0)
        else:  # a place without records has no value
            found, empty = tallies, None
        chosen = [
            found.get((_of_year(subset, year), jurisdiction), empty) for subset in formula.subsets
        ]
        present = [tally for tally in chosen if tally is not None]
        complete = len(present) == len(chosen)
        result[(code, jurisdiction, year)] = Computed(formula, tuple(present)) if complete else None
    return result
