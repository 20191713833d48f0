"""Aggregate figures: validate the grouping, run one grouped statement, then apply disclosure
control (domain/suppression.py: the cell-key method and the threshold k).

This is the one place where every figure table is published, whichever path asked for it.
Aggregates cover any jurisdiction (aggregates:read); what depends on the caller is which records
are its own, read apart from the others, and which of those are exact (resolvers/policy.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from operator import itemgetter
from types import SimpleNamespace
from weakref import WeakKeyDictionary

from db.queries import aggregates
from db.queries.aggregates import Figures, GroupRow, region_dimension
from db.queries.indicator_values import Computed
from db.queries.scoping import NATIONAL
from db.releases import Release
from domain.cellkey import FOLLOWS, NOTHING_OWN, Own, Perturbation, Summed
from domain.identifiers import is_within
from domain.suppression import (
    NOTHING_TALLIED,
    Cell,
    indicator_count,
    indicator_share,
    indicator_total,
    publish,
)
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.policy import AccessPolicy, FigureRecords

MAX_DIMENSIONS = 4
REGION_DIMENSIONS = ("regency", "province")

FIGURE_ROWS = 10_000
"""The most cells a figure table is estimated at: the request guard costs a table at no more
(schema.limits). GROUP BY CUBE answers every subtotal too, so a table has up to the product over
its dimensions of their values plus one: regencies by section, (514 + 1) × (21 + 1) = 11,330
cells (schema.limits' REGIONS and KBLI_SECTIONS, each plus its subtotal), and millions for four
dimensions, of which only cells with records are read (6,603 for active by year, section and
regency over 3,000 demo MSMEs, 13,189 for the widest table over 50,000)."""

FIGURE_CELLS_READ = 15_000
"""The most cells a figure table may read as it runs (`grouped_figures`): past it, refused after
reading one more row than this, not the whole cube. Above FIGURE_ROWS, since the nation's
regencies by section (11,330 cells, subtotals counted) is a legitimate table of two
dimensions, and the widest table read over 50,000 MSMEs (13,189) fits with it too; a third over
the first, for margin."""

_FIGURE_TURNS: WeakKeyDictionary[asyncio.Semaphore, asyncio.Lock] = WeakKeyDictionary()
"""Each HTTP request's turn at reading a figure table, by its connection share (that of its
batch's operations together, `Context.connections`): its tables are read one after the other.
Read at once, four aliased tables of 6,000 cells held four pooled connections and queued another
client's read past the pool timeout, besides spending 2.5 s of CPU on the event loop in one go.
A context without a share is no HTTP request's (a script's, a test's)."""


@dataclass(frozen=True, slots=True)
class KeyPartRow:
    dimension: str
    value: str | None


def grouping_error(group_by: Sequence[str]) -> str | None:
    """Why a figure table cannot be grouped by `group_by`, or None. The request guard asks
    before anything runs (schema.limits), so that a groupBy of 150,000 dimensions is refused
    before it is measured; the resolver asks again as it runs."""
    if len(group_by) > MAX_DIMENSIONS:
        return f"at most {MAX_DIMENSIONS} dimensions, got {len(group_by)}"
    if len(set(group_by)) != len(group_by):
        return "names a dimension twice"
    return None


def checked_grouping(group_by: Sequence[str]) -> list[str]:
    reason = grouping_error(group_by)
    if reason is not None:
        raise bad_input("groupBy", reason)
    return list(group_by)


def cell_region(group_by: Sequence[str], scope: str) -> Callable[[Sequence[str | None]], str]:
    """The narrowest region a cell of keys `group_by` is about: a region in its key, else the
    filter's region. Where the key holds one is worked out once a table, not once a cell."""
    places = [group_by.index(name) for name in REGION_DIMENSIONS if name in group_by]

    def region(key: Sequence[str | None]) -> str:
        for place in places:
            value = key[place]
            if value is not None:
                return str(value)
        return scope

    return region


@cache
def _sum_columns(name: str) -> Callable[[Mapping[str, int]], tuple[int, ...]]:
    """What reads the columns of a summed measure as `aggregates.Figures.sums` names them, in
    the order Summed takes them: spelled once, not twelve times a cell, and read in one call."""
    parts = ("n", "sum", "squares", "key_sum", "valued_key_sum")
    follows = ("cross",) if name in FOLLOWS else ()
    return itemgetter(*(f"{name}_{part}" for part in (*parts, *follows)))


def cell_sums(measures: Mapping[str, int], names: Sequence[str]) -> dict[str, Summed]:
    """Each summed measure of a cell as `aggregates.Figures.sums` names its columns (the cross
    sum 0 for one that follows no other)."""
    return {name: Summed(*_sum_columns(name)(measures)) for name in names}


def figures(
    rows: Sequence[GroupRow],
    group_by: Sequence[str],
    policy: AccessPolicy,
    records: FigureRecords,
    *,
    k: int,
    perturbation: Perturbation,
    scope: str,
    sums: Sequence[str] = (),
    averages: tuple[str, ...] = (),
    members_only: bool = False,
) -> list[SimpleNamespace]:
    """Each row published as the caller may see it: exact where it may read every record behind
    the cell, else the others' records perturbed and its own (a row's `own`) exact or perturbed
    apart. Where the caller's own part is published apart too
    (`AccessPolicy.reads_own_figures_apart`: guarantees), a row also carries it as `own_count`
    and `own_<measure>`. `members_only`: rows of a membership only readers of the records may
    list, whose hidden cells are left out (domain.suppression.publish)."""
    own_exact = policy.reads_own_figures(records)
    sees: dict[str, bool] = {}  # whether the caller sees a region's small cells: asked once

    region_of = cell_region(group_by, scope)

    def protected(key: Sequence[str | None]) -> bool:
        region = region_of(key)
        if region not in sees:
            sees[region] = policy.sees_small_cells(region, records)
        return not sees[region]

    cells = [
        Cell(
            key=row.key,
            count=row.measures["count"],
            key_sum=row.measures["key_sum"],
            sums=cell_sums(row.measures, sums),
            protected=protected(row.key),
            own=(
                NOTHING_OWN
                if row.own is None
                else Own(
                    row.own["count"],
                    row.own["key_sum"],
                    cell_sums(row.own, sums),
                    exact=own_exact,
                )
            ),
        )
        for row in rows
    ]
    published = []
    shown = publish(
        cells,
        k=k,
        perturbation=perturbation,
        averages=averages,
        members_only=members_only,
        own_apart=policy.reads_own_figures_apart(records),
    )
    key_parts: dict[tuple[str, str | None], KeyPartRow] = {}  # frozen: shared by the cells
    for cell in shown:
        parts = []
        for part in zip(group_by, cell.key, strict=True):
            row = key_parts.get(part)
            if row is None:
                row = key_parts[part] = KeyPartRow(*part)
            parts.append(row)
        own = {f"own_{name}": value for name, value in cell.own_values.items()}
        published.append(
            SimpleNamespace(
                key=parts,
                suppressed=cell.suppressed,
                count=cell.count,
                own_count=cell.own_count,
                **cell.values,
                **own,
            )
        )
    return published


async def grouped_figures(
    context: Context,
    figures_of: Callable[[Sequence[str]], Figures],
    *,
    group_by: Sequence[str],
    scope: str | None,
    records: FigureRecords = "registers",
) -> list[SimpleNamespace]:
    """`figures_of` says what to read for the dimensions it is given (a rollup or the records);
    `scope` is the region the filter restricts rows to (None: the whole country). A table
    with any cell the caller may not see exact is read from the current release
    (`AccessPolicy.reads_released_figures`).

    The caller's own records (`AccessPolicy.own_figure_records`) are read apart, so that their
    part of a cell never moves the others' noise; for the registers' rule, `figures_of` is also
    asked for the dimension of the caller's jurisdiction."""
    group_by = checked_grouping(group_by)
    policy = context.policy
    dimension = region_dimension(policy.own_region)
    chosen = figures_of([*group_by, dimension] if dimension else group_by)
    own = policy.own_figure_records(records, chosen)
    region = scope or NATIONAL
    released = policy.reads_released_figures(region, records)
    share = context.connections
    turn = nullcontext() if share is None else _FIGURE_TURNS.setdefault(share, asyncio.Lock())
    async with (
        turn,
        (context.reads.released if released else context.reads.connect)() as connection,
    ):
        try:
            rows = await aggregates.grouped(
                connection, chosen, group_by=group_by, own=own, at_most=FIGURE_CELLS_READ
            )
        except aggregates.TooManyCells:
            raise coded_error(
                ErrorCode.QUERY_TOO_COMPLEX,
                f"the figure table exceeds the figure rows limit of {FIGURE_CELLS_READ} cells;"
                " filter it to a province, or group by fewer dimensions",
                limit="figure rows",
                maximum=FIGURE_CELLS_READ,
                actual=FIGURE_CELLS_READ + 1,
            ) from None
    return figures(
        rows,
        group_by,
        context.policy,
        records,
        k=context.limits.suppression_k,
        perturbation=context.limits.perturbation,
        scope=region,
        sums=chosen.sums,
        averages=chosen.averages,
        members_only=chosen.members_only,
    )


async def current_release(context: Context) -> Release | None:
    """The figure release the request's perturbed figures are read from (db/releases.py)."""
    return await context.reads.release()


def own_part(context: Context, jurisdiction: str) -> str | None:
    """The caller's own region inside `jurisdiction`, when that is only part of it (a
    province's, in the nation): an indicator of the wider jurisdiction takes its records apart,
    as a figure cell does."""
    own = context.policy.own_region
    if own is None or own == jurisdiction or not is_within(own, jurisdiction):
        return None
    return own


def indicator_value(
    context: Context, computed: Computed, jurisdiction: str, own: Computed | None = None
) -> Decimal | None:
    """An indicator worked out from the records, published as its figure cells would be: exact
    for a caller that may read the jurisdiction's records, else perturbed and thresholded, the
    tallies of `own_part` (`own`) apart, exact when the caller may read them; a count of
    members (`Formula.members_only`, a share's part) as `graduations` publishes its cells."""
    policy = context.policy
    perturbation = None if policy.sees_small_cells(jurisdiction) else context.limits.perturbation
    k = context.limits.suppression_k
    formula, tallies = computed.formula, computed.tallies
    mine = (NOTHING_TALLIED,) * len(tallies) if own is None else own.tallies
    exact = policy.reads_own_figures("registers")
    if formula.kind == "share":
        return indicator_share(
            tallies[0],
            tallies[1],
            k=k,
            perturbation=perturbation,
            own=(mine[0], mine[1]),
            own_exact=exact,
            members_only=formula.members_only,
        )
    if formula.kind == "total":
        value = indicator_total(
            tallies[0],
            formula.measure,
            k=k,
            perturbation=perturbation,
            own=mine[0],
            own_exact=exact,
        )
    else:
        value = indicator_count(
            tallies[0],
            k=k,
            perturbation=perturbation,
            own=mine[0],
            own_exact=exact,
            members_only=formula.members_only,
        )
    return None if value is None else Decimal(value)
