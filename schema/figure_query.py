"""Aggregate queries for ministries and everyone holding aggregates:read."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from db.queries import aggregates, msmes
from resolvers import records
from resolvers.aggregates import grouped_figures
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
    GraduationDimension,
    GraduationFigure,
    MsmeDimension,
    MsmeFigure,
)

NATIONAL = "ID"


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
        where = await msme_where(info.context, filter)
        return await grouped_figures(  # type: ignore[return-value]
            info,
            partial(aggregates.msme_figures, where),
            group_by=[str(stored_value(dimension)) for dimension in group_by],
            scope=where.region,
        )

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
        where = await cooperative_where(info.context, filter)
        return await grouped_figures(  # type: ignore[return-value]
            info,
            partial(aggregates.cooperative_figures, where),
            group_by=[str(stored_value(dimension)) for dimension in group_by],
            scope=where.region,
        )

    @requires(
        Scope.AGGREGATES_READ,
        description="MSMEs that moved up a scale in `year` ('naik kelas'), grouped, with totals.",
    )
    async def graduations(
        self,
        info: Info[Context, Any],
        year: int,
        group_by: list[GraduationDimension],
        region: str | None = None,
    ) -> list[GraduationFigure] | None:
        source, dimensions = aggregates.graduation_source(year)
        where = msmes.MsmeFilter(
            region=await records.checked_region(info.context, region, "region")
        )
        figures = aggregates.Figures(
            source,
            dimensions,
            {"count": aggregates.MSME_MEASURES["count"]},
            msmes.conditions(NATIONAL, where),
        )
        return await grouped_figures(  # type: ignore[return-value]
            info,
            lambda _: figures,
            group_by=[str(stored_value(dimension)) for dimension in group_by],
            scope=where.region,
        )
