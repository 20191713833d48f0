"""Provinces and regencies report realisations against their planning targets."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from resolvers import planning
from resolvers.context import Context
from schema.permissions import requires
from schema.scalars import ExactDecimal
from schema.types.planning import Realisation


@strawberry.input(description="A reported value of an indicator for a jurisdiction and year.")
class RealisationInput:
    indicator: str = strawberry.field(description='An indicator code, e.g. "KOP_PRODUKSI_VOLUME".')
    jurisdiction: str = strawberry.field(
        description="Your jurisdiction or a regency or city inside it: targets are set no lower."
    )
    year: int
    value: ExactDecimal = strawberry.field(
        description="In the indicator's unit: a percent from 0 to 100, a count or rupiah whole."
    )
    source: str = strawberry.field(description="Where the figure comes from.")
    reported_on: date | None = strawberry.field(default=None, description="Default: today.")
    qualifier: str | None = strawberry.field(
        default=None,
        description="As the source states it: more_than or at_least; any other is refused.",
    )


@strawberry.type
class PlanningMutation:
    @requires(
        Scope.TARGETS_WRITE,
        description="Report a realisation; earlier reports stay as the indicator's history.",
    )
    async def report_realisation(
        self, info: Info[Context, Any], report: RealisationInput
    ) -> Realisation | None:
        return await planning.report(  # type: ignore[return-value]
            info,
            planning.Report(
                indicator=report.indicator,
                jurisdiction=report.jurisdiction,
                year=report.year,
                value=report.value,
                source=report.source,
                reported_on=report.reported_on,
                qualifier=report.qualifier,
            ),
        )
