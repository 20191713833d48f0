"""Aggregate figures: one cell per combination of the grouped dimensions, totals included.

A cell that counts fewer than k businesses is suppressed (count and measures null) for a client
without records:read over the cell's jurisdiction, and enough other cells are suppressed with it
that no suppressed value can be worked out by subtraction (domain/suppression.py).
"""

from __future__ import annotations

from enum import Enum

import strawberry

from resolvers import relations
from schema.scalars import Rupiah
from schema.types.regions import Region


@strawberry.enum(description="What MSME figures can be grouped by.")
class MsmeDimension(Enum):
    PROVINCE = "province"
    REGENCY = "regency"
    SCALE = "scale"
    KBLI_SECTION = "kbli_section"
    ACTIVE = "active"
    ESTABLISHED_YEAR = "established_year"


@strawberry.enum(description="What cooperative figures can be grouped by.")
class CooperativeDimension(Enum):
    PROVINCE = "province"
    REGENCY = "regency"
    TYPE = "type"
    STATUS = "status"
    BOOK_YEAR = "book_year"


@strawberry.enum(description="What graduation ('naik kelas') figures can be grouped by.")
class GraduationDimension(Enum):
    PROVINCE = "province"
    REGENCY = "regency"
    FROM_SCALE = "from_scale"
    TO_SCALE = "to_scale"


@strawberry.type(
    description="One dimension of a cell: its value, or null where the cell totals over it."
)
class KeyPart:
    dimension: str
    value: str | None = strawberry.field(description="null: a total over this dimension.")
    region: Region | None = strawberry.field(
        resolver=relations.key_region, description="The region, for province and regency."
    )


@strawberry.type
class MsmeFigure:
    key: list[KeyPart]
    suppressed: bool
    count: int | None
    turnover_sum: Rupiah | None
    turnover_average: Rupiah | None
    capital_sum: Rupiah | None
    employees_sum: int | None


@strawberry.type
class CooperativeFigure:
    key: list[KeyPart]
    suppressed: bool
    count: int | None
    business_volume_sum: Rupiah | None
    business_volume_average: Rupiah | None
    assets_sum: Rupiah | None
    members_sum: int | None


@strawberry.type(description="MSMEs whose scale rose in the year (PP 7/2021 'naik kelas').")
class GraduationFigure:
    key: list[KeyPart]
    suppressed: bool
    count: int | None


@strawberry.enum(description="What guarantee figures can be grouped by.")
class GuaranteeDimension(Enum):
    PROVINCE = "province"
    REGENCY = "regency"
    STATUS = "status"
    YEAR = "year"
    SUBJECT_KIND = "subject_kind"


@strawberry.type(description="Credit guarantees issued by BUMDs: access to finance.")
class GuaranteeFigure:
    key: list[KeyPart]
    suppressed: bool
    count: int | None
    amount_sum: Rupiah | None
    coverage_sum: Rupiah | None
