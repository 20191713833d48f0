"""The root of every read."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from resolvers import records, reference
from resolvers.context import Context
from schema import compiled
from schema.audit_query import AuditQuery
from schema.eligibility_query import EligibilityQuery
from schema.figure_query import FigureQuery
from schema.inputs import CooperativeFilter, MsmeFilter, cooperative_where, msme_where
from schema.permissions import requires
from schema.types.change_feed import ChangeFeedQuery
from schema.types.pagination import Connection
from schema.types.planning import Indicator
from schema.types.records import Cooperative, Msme, Programme
from schema.types.regions import Region


@strawberry.type(description="The client making the request and what it is entitled to.")
class Viewer:
    client_id: str
    org_kind: str
    jurisdiction: str
    scopes: list[str]


@strawberry.type
class Query(FigureQuery, AuditQuery, EligibilityQuery, ChangeFeedQuery):
    @strawberry.field(description="Who is asking, as the server sees it.")
    def viewer(self, info: Info[Context, Any]) -> Viewer:
        principal = info.context.principal
        return Viewer(
            client_id=principal.client_id,
            org_kind=principal.org_kind.value,
            jurisdiction=principal.jurisdiction,
            scopes=sorted(scope.value for scope in principal.scopes),
        )

    @strawberry.field(description='A region by Kemendagri code, e.g. "62" or "62.71".')
    async def region(self, info: Info[Context, Any], code: str) -> Region | None:
        return await reference.region(info, code)

    @strawberry.field(description="The national pseudo-region; its children are the provinces.")
    async def indonesia(self, info: Info[Context, Any]) -> Region:
        nation: Region = await info.context.loaders.region.load("ID")
        return nation

    @requires(Scope.RECORDS_READ, description="An MSME by NIB, if inside your jurisdiction.")
    async def msme(self, info: Info[Context, Any], nib: str) -> Msme | None:
        nib = records.checked_nib(nib)
        return await compiled.record(  # type: ignore[no-any-return]
            info, Msme, key="nib", value=nib, rows=lambda: records.msme_by_nib(info, nib)
        )

    @requires(Scope.RECORDS_READ, description="MSMEs in your jurisdiction, oldest record first.")
    async def msmes(
        self,
        info: Info[Context, Any],
        first: int | None = None,
        after: str | None = None,
        filter: MsmeFilter | None = None,
    ) -> Connection[Msme] | None:
        where = await msme_where(info.context, filter)
        # The PageResult is the Connection's source (see schema/types/pagination.py).
        return await compiled.page(  # type: ignore[return-value]
            info,
            Msme,
            first=first,
            after=after,
            where=where,
            rows=lambda: records.msme_page(info, first=first, after=after, where=where),
        )

    @requires(Scope.RECORDS_READ, description="A cooperative by its legal-entity number.")
    async def cooperative(
        self, info: Info[Context, Any], legal_entity_no: str
    ) -> Cooperative | None:
        number = records.checked_legal_entity_no(legal_entity_no)
        return await compiled.record(  # type: ignore[no-any-return]
            info,
            Cooperative,
            key="legal_entity_no",
            value=number,
            rows=lambda: records.cooperative_by_legal_entity_no(info, number),
        )

    @requires(Scope.RECORDS_READ, description="Cooperatives in your jurisdiction.")
    async def cooperatives(
        self,
        info: Info[Context, Any],
        first: int | None = None,
        after: str | None = None,
        filter: CooperativeFilter | None = None,
    ) -> Connection[Cooperative] | None:
        where = await cooperative_where(info.context, filter)
        # The PageResult is the Connection's source (see schema/types/pagination.py).
        return await compiled.page(  # type: ignore[return-value]
            info,
            Cooperative,
            first=first,
            after=after,
            where=where,
            rows=lambda: records.cooperative_page(info, first=first, after=after, where=where),
        )

    @strawberry.field(description="Every programme Sinergi knows of.")
    async def programmes(self, info: Info[Context, Any]) -> list[Programme]:
        return await reference.all_programmes(info)

    @strawberry.field
    async def programme(self, info: Info[Context, Any], id: strawberry.ID) -> Programme | None:
        return await reference.programme(info, id)

    @requires(Scope.TARGETS_READ, description="Planning indicators with targets and realisations.")
    async def indicators(self, info: Info[Context, Any]) -> list[Indicator] | None:
        return await reference.all_indicators(info)

    @requires(Scope.TARGETS_READ)
    async def indicator(self, info: Info[Context, Any], code: str) -> Indicator | None:
        return await reference.indicator(info, code)
