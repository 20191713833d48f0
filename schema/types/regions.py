"""Kemendagri regions: public reference data."""

from __future__ import annotations

import strawberry

from resolvers import relations
from schema.enums import RegionLevel


@strawberry.type(
    description="A province, regency, city or district (Kepmendagri 300.2.2-2138/2025)."
)
class Region:
    code: str = strawberry.field(description='Kemendagri code: "62", "62.01", "62.01.05".')
    level: RegionLevel
    name: str
    parent: Region | None = strawberry.field(
        resolver=relations.region_parent, metadata={"columns": ("parent_code",)}
    )
    province: Region | None = strawberry.field(
        resolver=relations.region_province,
        description="The province this region lies in; a province is its own.",
    )
    children: list[Region] = strawberry.field(resolver=relations.region_children)
