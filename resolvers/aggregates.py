"""Aggregate figures: validate the grouping, run one grouped statement, then suppress small cells.

Aggregates cover any jurisdiction (aggregates:read); what depends on the caller is only which
cells are exempt from suppression: those inside a jurisdiction where it may read the records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from auth.principal import Principal
from auth.scopes import Scope
from db.queries import aggregates
from db.queries.aggregates import Figures, GroupRow
from domain.suppression import Cell, suppress
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.policy import AccessPolicy

MAX_DIMENSIONS = 4
REGION_DIMENSIONS = ("regency", "province")


@dataclass(frozen=True, slots=True)
class KeyPartRow:
    dimension: str
    value: str | None


def checked_grouping(group_by: Sequence[str]) -> list[str]:
    if len(group_by) > MAX_DIMENSIONS:
        raise bad_input("groupBy", f"at most {MAX_DIMENSIONS} dimensions, got {len(group_by)}")
    if len(set(group_by)) != len(group_by):
        raise bad_input("groupBy", "names a dimension twice")
    return list(group_by)


def cell_region(group_by: Sequence[str], key: Sequence[str | None], scope: str) -> str:
    """The narrowest region a cell is about: a region in its key, else the filter's region."""
    values = dict(zip(group_by, key, strict=True))
    for dimension in REGION_DIMENSIONS:
        if values.get(dimension) is not None:
            return str(values[dimension])
    return scope


def is_protected(principal: Principal, region: str) -> bool:
    """Small cells stay hidden unless the caller may read the records of that region anyway."""
    return not AccessPolicy(principal).sees_small_cells(region)


def figures(
    rows: Sequence[GroupRow],
    group_by: Sequence[str],
    principal: Principal,
    *,
    k: int,
    scope: str,
) -> list[SimpleNamespace]:
    reads_records = principal.has(Scope.RECORDS_READ)  # without it, every cell is protected
    cells = [
        Cell(
            key=row.key,
            count=int(row.measures["count"]),
            values={name: value for name, value in row.measures.items() if name != "count"},
            protected=not reads_records
            or is_protected(principal, cell_region(group_by, row.key, scope)),
        )
        for row in rows
    ]
    published = []
    for cell in suppress(cells, k=k):
        parts = [KeyPartRow(name, value) for name, value in zip(group_by, cell.key, strict=True)]
        published.append(
            SimpleNamespace(key=parts, suppressed=cell.suppressed, count=cell.count, **cell.values)
        )
    return published


async def grouped_figures(
    context: Context,
    figures_of: Callable[[Sequence[str]], Figures],
    *,
    group_by: Sequence[str],
    scope: str | None,
) -> list[SimpleNamespace]:
    """`figures_of` says what to read for the checked grouping (a rollup or the records);
    `scope` is the region the filter restricts rows to (None: the whole country). Called by the
    resolvers and by the direct path (schema/direct_figures.py) alike."""
    group_by = checked_grouping(group_by)
    async with context.reads.connect() as connection:
        rows = await aggregates.grouped(connection, figures_of(group_by), group_by=group_by)
    return figures(
        rows,
        group_by,
        context.principal,
        k=context.limits.suppression_k,
        scope=scope or "ID",
    )
