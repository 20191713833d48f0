"""Aggregate queries for ministries and everyone holding aggregates:read.

Each field's work is a plain function of the context and the arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from functools import partial
from types import SimpleNamespace
from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from db.models import MSMES
from db.queries import aggregates, msmes
from db.queries.scoping import EVERYWHERE
from resolvers import records
from resolvers.aggregates import current_release, grouped_figures
from resolvers.context import Context
from schema.inputs import (
    CooperativeFilter,
    MsmeFilter,
    cooperative_where,
    msme_where,
    stored_value,
)
from schema.permissions import requires
from schema.types.figures import (
    CooperativeDimension,
    CooperativeFigure,
    FigureRelease,
    GraduationDimension,
    GraduationFigure,
    MsmeDimension,
    MsmeFigure,
)

Dimensions = Sequence[Enum | str]  # members from Strawberry, values from the direct path


def _names(group_by: Dimensions) -> list[str]:
    return [str(stored_value(dimension)) for dimension in group_by]


async def msme_figures(
    context: Context, group_by: Dimensions, filter: MsmeFilter | None
) -> list[SimpleNamespace]:
    where = await msme_where(context, filter)
    return await grouped_figures(
        context,
        partial(aggregates.msme_figures, where),
        group_by=_names(group_by),
        scope=where.region,
    )


async def cooperative_figures(
    context: Context, group_by: Dimensions, filter: CooperativeFilter | None
) -> list[SimpleNamespace]:
    where = await cooperative_where(context, filter)
    return await grouped_figures(
        context,
        partial(aggregates.cooperative_figures, where),
        group_by=_names(group_by),
        scope=where.region,
    )


async def graduations(
    context: Context, year: int, group_by: Dimensions, region: str | None
) -> list[SimpleNamespace]:
    source, dimensions = aggregates.graduation_source(year)
    where = msmes.MsmeFilter(region=await records.checked_region(context, region, "region"))
    # A graduate's cell says its sales passed a threshold that year, a past turnover band: too
    # few to show, it is left out, key and all, as a table of members leaves its cells out
    # (docs/disclosure-control.md, point 8), not published as a hidden cell naming its key.
    figures = aggregates.Figures(
        source,
        dimensions,
        aggregates.record_measures(MSMES.c.cell_key, {}),
        msmes.conditions(EVERYWHERE, where),
        members_only=True,
    )
    return await grouped_figures(
        context, lambda _: figures, group_by=_names(group_by), scope=where.region
    )


@strawberry.type
class FigureQuery:
    @requires(
        Scope.AGGREGATES_READ,
        description="MSME counts and sums grouped by up to four dimensions, with all totals.",
    )
    async def msme_figures(
        self,
        info: Info[Context, Any],
        group_by: list[MsmeDimension],
        filter: MsmeFilter | None = None,
    ) -> list[MsmeFigure] | None:
        return await msme_figures(info.context, group_by, filter)  # type: ignore[return-value]

    @requires(
        Scope.AGGREGATES_READ,
        description="Cooperative counts and sums grouped by up to four dimensions, with totals.",
    )
    async def cooperative_figures(
        self,
        info: Info[Context, Any],
        group_by: list[CooperativeDimension],
        filter: CooperativeFilter | None = None,
    ) -> list[CooperativeFigure] | None:
        return await cooperative_figures(  # type: ignore[return-value]
            info.context, group_by, filter
        )

    @requires(
        Scope.AGGREGATES_READ,
        description="The figure release perturbed figures are computed from now; null before "
        "the first.",
    )
    async def figure_release(self, info: Info[Context, Any]) -> FigureRelease | None:
        return await current_release(info.context)  # type: ignore[return-value]

    @requires(
        Scope.AGGREGATES_READ,
        description="MSMEs that moved up a scale in `year` ('naik kelas': micro to small or "
        "medium, small to medium), grouped, with totals: each business once, from the lowest "
        "scale it rose from to the highest it reached that year; the MIKRO_NAIK_KELAS "
        "indicator counts those that rose from micro only. A change counts in the year its "
        "annual sales were made (ScaleChange.turnoverYear), else the year it took effect. "
        "Whose sales passed a threshold is not public: a cell of businesses you may not read "
        "that is too small to show is left out, not marked suppressed.",
    )
    async def graduations(
        self,
        info: Info[Context, Any],
        year: int,
        group_by: list[GraduationDimension],
        region: str | None = None,
    ) -> list[GraduationFigure] | None:
        return await graduations(info.context, year, group_by, region)  # type: ignore[return-value]
