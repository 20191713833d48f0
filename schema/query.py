"""The root of every read."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from db.queries.scoping import NATIONAL
from resolvers import records, reference
from resolvers.context import Context
from schema import compiled
from schema.audit_query import AuditQuery
from schema.eligibility_query import EligibilityQuery
from schema.figure_query import FigureQuery
from schema.inputs import CooperativeFilter, MsmeFilter, cooperative_where, msme_where
from schema.permissions import requires
from schema.plan import ContextRoot
from schema.types.change_feed import ChangeFeedQuery
from schema.types.pagination import Connection
from schema.types.planning import Indicator
from schema.types.records import Cooperative, Msme, Programme
from schema.types.regions import Region

MSME_BY_NIB = compiled.RecordRoot(Msme, "nib", records.checked_nib, records.msme_by_nib)
COOPERATIVE_BY_NUMBER = compiled.RecordRoot(
    Cooperative,
    "legal_entity_no",
    records.checked_legal_entity_no,
    records.cooperative_by_legal_entity_no,
)
MSME_PAGES = compiled.PageRoot(Msme, msme_where, records.msme_page)
COOPERATIVE_PAGES = compiled.PageRoot(Cooperative, cooperative_where, records.cooperative_page)
PROGRAMMES = compiled.ListRoot(Programme, reference.all_programmes)
PROGRAMME_BY_ID = compiled.RecordRoot(
    Programme, "id", reference.checked_programme_id, reference.programme
)
REGION_BY_CODE = compiled.RecordRoot(
    Region, "code", records.checked_region_code, reference.region, unknown_refused=True
)
NATION = compiled.RecordRoot(Region, "code", str, reference.region, fixed=NATIONAL)


@strawberry.type(description="The client making the request and what it is entitled to.")
class Viewer:
    client_id: str
    org_kind: str
    jurisdiction: str
    scopes: list[str]


def viewer_of(context: Context) -> Viewer:
    principal = context.principal
    return Viewer(
        client_id=principal.client_id,
        org_kind=principal.org_kind.value,
        jurisdiction=principal.jurisdiction,
        scopes=sorted(scope.value for scope in principal.scopes),
    )


VIEWER = ContextRoot(Viewer, viewer_of)
PLANNED: dict[str, compiled.RecordRoot | compiled.ListRoot | compiled.PageRoot | ContextRoot] = {
    "viewer": VIEWER,
    "msme": MSME_BY_NIB,
    "msmes": MSME_PAGES,
    "cooperative": COOPERATIVE_BY_NUMBER,
    "cooperatives": COOPERATIVE_PAGES,
    "programmes": PROGRAMMES,
    "programme": PROGRAMME_BY_ID,
    "region": REGION_BY_CODE,
    "indonesia": NATION,
}
"""The root fields a plan answers without the executor (schema/plan.py), by name: the viewer
from the request's context, the rest with the statement in which PostgreSQL writes the whole
answer."""


@strawberry.type
class Query(FigureQuery, AuditQuery, EligibilityQuery, ChangeFeedQuery):
    @strawberry.field(description="Who is asking, as the server sees it.")
    def viewer(self, info: Info[Context, Any]) -> Viewer:
        return viewer_of(info.context)

    @strawberry.field(description='A region by Kemendagri code, e.g. "62" or "62.71".')
    async def region(self, info: Info[Context, Any], code: str) -> Region | None:
        return await compiled.record(info, REGION_BY_CODE, code)  # type: ignore[no-any-return]

    @strawberry.field(description="The national pseudo-region; its children are the provinces.")
    async def indonesia(self, info: Info[Context, Any]) -> Region:
        return await compiled.record(info, NATION, NATIONAL)  # type: ignore[no-any-return]

    @requires(Scope.RECORDS_READ, description="An MSME by NIB, if inside your jurisdiction.")
    async def msme(self, info: Info[Context, Any], nib: str) -> Msme | None:
        return await compiled.record(info, MSME_BY_NIB, nib)  # type: ignore[no-any-return]

    @requires(Scope.RECORDS_READ, description="MSMEs in your jurisdiction, oldest record first.")
    async def msmes(
        self,
        info: Info[Context, Any],
        first: int | None = None,
        after: str | None = None,
        filter: MsmeFilter | None = None,
    ) -> Connection[Msme] | None:
        # The PageResult is the Connection's source (see schema/types/pagination.py).
        return await compiled.page(  # type: ignore[return-value]
            info, MSME_PAGES, first=first, after=after, filter=filter
        )

    @requires(
        Scope.RECORDS_READ,
        description=(
            "A cooperative by its legal-entity number, in any spelling: a Kemenkumham"
            " number's leading zeros, case and spaces do not matter."
        ),
    )
    async def cooperative(
        self, info: Info[Context, Any], legal_entity_no: str
    ) -> Cooperative | None:
        return await compiled.record(  # type: ignore[no-any-return]
            info, COOPERATIVE_BY_NUMBER, legal_entity_no
        )

    @requires(Scope.RECORDS_READ, description="Cooperatives in your jurisdiction.")
    async def cooperatives(
        self,
        info: Info[Context, Any],
        first: int | None = None,
        after: str | None = None,
        filter: CooperativeFilter | None = None,
    ) -> Connection[Cooperative] | None:
        # The PageResult is the Connection's source (see schema/types/pagination.py).
        return await compiled.page(  # type: ignore[return-value]
            info, COOPERATIVE_PAGES, first=first, after=after, filter=filter
        )

    @strawberry.field(description="Every programme Sinergi knows of.")
    async def programmes(self, info: Info[Context, Any]) -> list[Programme]:
        return await compiled.listed(info, PROGRAMMES)  # type: ignore[no-any-return]

    @strawberry.field
    async def programme(self, info: Info[Context, Any], id: strawberry.ID) -> Programme | None:
        return await compiled.record(info, PROGRAMME_BY_ID, id)  # type: ignore[no-any-return]

    @requires(Scope.TARGETS_READ, description="Planning indicators with targets and realisations.")
    async def indicators(self, info: Info[Context, Any]) -> list[Indicator] | None:
        return await reference.all_indicators(info)

    @requires(Scope.TARGETS_READ)
    async def indicator(self, info: Info[Context, Any], code: str) -> Indicator | None:
        return await reference.indicator(info, code)
