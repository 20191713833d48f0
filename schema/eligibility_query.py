"""Reading back eligibility decisions, and guarantee figures for access-to-finance reporting."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from db.queries import guarantees
from resolvers import eligibility, records
from resolvers.aggregates import grouped_figures
from resolvers.context import Context
from resolvers.errors import bad_input
from schema.inputs import stored_value
from schema.permissions import requires
from schema.types.eligibility import EligibilityDecision
from schema.types.figures import GuaranteeDimension, GuaranteeFigure


@strawberry.type
class EligibilityQuery:
    @requires(
        Scope.ELIGIBILITY_CHECK,
        description="One of your decisions, with its reasons and a replay to explain it.",
    )
    async def eligibility_decision(
        self, info: Info[Context, Any], id: strawberry.ID
    ) -> EligibilityDecision | None:
        return await eligibility.decision(info, id)  # type: ignore[return-value]

    @requires(
        Scope.AGGREGATES_READ,
        description="Guarantee counts and amounts grouped by up to four dimensions, with totals. "
        "A guaranteed loan is its borrower's credit file: a cell too small to show is left out, "
        "not marked suppressed, unless it holds a guarantee of your own.",
    )
    async def guarantee_figures(
        self,
        info: Info[Context, Any],
        group_by: list[GuaranteeDimension],
        region: str | None = None,
    ) -> list[GuaranteeFigure] | None:
        scope = await records.checked_region(info.context, region, "region")
        if scope is not None and len(scope) > len("62.01"):
            raise bad_input("region", "guarantee figures go down to regencies, not districts")
        apart = info.context.policy.reads_own_figures_apart("guarantees")
        figures = guarantees.figures(scope or "ID", members_only=not apart)
        return await grouped_figures(  # type: ignore[return-value]
            info.context,
            lambda _: figures,
            group_by=[str(stored_value(dimension)) for dimension in group_by],
            scope=scope,
            records="guarantees",
        )
