"""Aggregate figures: validate the grouping, run one grouped statement, then apply disclosure
control (domain/suppression.py: the cell-key method and the threshold k).

This is the one place where every figure table is published, whichever path asked for it.
Aggregates cover any jurisdiction (aggregates:read); what depends on the caller is only which
cells are exact: those inside a jurisdiction where it may read the records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

from auth.principal import Principal
from auth.scopes import Scope
from db.queries import aggregates
from db.queries.aggregates import Figures, GroupRow
from db.queries.indicator_values import Computed
from domain.cellkey import Perturbation, Summed
from domain.suppression import (
    Cell,
    indicator_count,
    indicator_share,
    indicator_total,
    publish,
)
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
    """Figures are perturbed unless the caller may read the records of that region anyway."""
    return not AccessPolicy(principal).sees_small_cells(region)


def _sums(measures: Mapping[str, int], columns: Sequence[tuple[str, ...]]) -> dict[str, Summed]:
    return {
        name: Summed(measures[n], measures[total], measures[squares])
        for name, n, total, squares in columns
    }


def figures(
    rows: Sequence[GroupRow],
    group_by: Sequence[str],
    principal: Principal,
    *,
    k: int,
    perturbation: Perturbation,
    scope: str,
    sums: Sequence[str] = (),
    averages: tuple[str, ...] = (),
) -> list[SimpleNamespace]:
    reads_records = principal.has(Scope.RECORDS_READ)  # without it, every cell is protected
    columns = [(name, f"{name}_n", f"{name}_sum", f"{name}_squares") for name in sums]
    cells = [
        Cell(
            key=row.key,
            count=row.measures["count"],
            key_sum=row.measures["key_sum"],
            sums=_sums(row.measures, columns),
            protected=not reads_records
            or is_protected(principal, cell_region(group_by, row.key, scope)),
        )
        for row in rows
    ]
    published = []
    for cell in publish(cells, k=k, perturbation=perturbation, averages=averages):
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
    chosen = figures_of(group_by)
    async with context.reads.connect() as connection:
        rows = await aggregates.grouped(connection, chosen, group_by=group_by)
    return figures(
        rows,
        group_by,
        context.principal,
        k=context.limits.suppression_k,
        perturbation=context.limits.perturbation,
        scope=scope or "ID",
        sums=chosen.sums,
        averages=chosen.averages,
    )


def indicator_value(context: Context, computed: Computed, jurisdiction: str) -> Decimal | None:
    """An indicator worked out from the records, published as its figure cells would be: exact
    for a caller that may read the jurisdiction's records, else perturbed and thresholded."""
    exact = not is_protected(context.principal, jurisdiction)
    perturbation = None if exact else context.limits.perturbation
    k = context.limits.suppression_k
    formula, tallies = computed.formula, computed.tallies
    if formula.kind == "share":
        return indicator_share(tallies[0], tallies[1], k=k, perturbation=perturbation)
    if formula.kind == "total":
        value = indicator_total(tallies[0], formula.measure, k=k, perturbation=perturbation)
    else:
        value = indicator_count(tallies[0], k=k, perturbation=perturbation)
    return None if value is None else Decimal(value)
