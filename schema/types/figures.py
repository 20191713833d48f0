"""Aggregate figures: one cell per combination of the grouped dimensions, totals included.

For a client without records:read over a cell's jurisdiction, the cell's counts and sums carry
the small noise of the cell-key method, the same for the same records whatever the query, and a
cell whose noisy count is below k is suppressed (count and measures null): domain/cellkey.py,
domain/suppression.py, docs/disclosure-control.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from auth.scopes import Scope
from resolvers import relations
from schema.permissions import requires
from schema.scalars import Rupiah, Total
from schema.types.regions import Region

SCALE_MEMBERS_ONLY = (
    "A business's scale is its owner's turnover band, not public: in figures by or of a scale, "
    "a cell you may not read that is too small to show is left out, not marked suppressed."
)


@strawberry.enum(description="What MSME figures can be grouped by.")
class MsmeDimension(Enum):
    PROVINCE = "province"
    REGENCY = "regency"
    SCALE = strawberry.enum_value("scale", description=SCALE_MEMBERS_ONLY)
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


SUPPRESSED = "Fewer than k businesses (after perturbation): count and measures are null."
PERTURBED = (
    "Counts and sums of records you may not read carry small noise (the cell-key method: the "
    "same for the same records in any query), and totals need not equal the sum of their parts. "
    "A table with any such cell is computed from the latest figure release (`figureRelease`), "
    "its other cells too; one you may read every record of, from the records as they are now."
)


@strawberry.type(
    description="A copy of the registers that perturbed figures are computed from, made at "
    "regular intervals: between two releases no change to a record moves a perturbed figure."
)
class FigureRelease:
    number: int = strawberry.field(description="Counts up from 1, one per release.")
    released_at: datetime = strawberry.field(description="When its copy was taken.")


def _past_an_int(total: str) -> str:
    """Why a sum of people is deprecated: a writer within its rights takes a cell past the Int
    (README, "Money" and the scalars), and every reader's cell then fails."""
    return (
        f"Use `{total}`: an Int holds at most 2,147,483,647, which a hundred or so records at"
        " the largest count a record may hold pass, and a cell past it fails."
    )


@strawberry.type(description=f"MSME figures of one cell. {PERTURBED}")
class MsmeFigure:
    key: list[KeyPart]
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    count: int | None
    turnover_sum: Rupiah | None
    turnover_average: Rupiah | None
    capital_sum: Rupiah | None
    employees_sum: int | None = strawberry.field(deprecation_reason=_past_an_int("employeesTotal"))

    @strawberry.field(
        description="Employees of the cell's businesses, perturbed as its other sums are."
    )
    def employees_total(self) -> Total | None:
        return None if self.employees_sum is None else Total(self.employees_sum)


@strawberry.type(description=f"Cooperative figures of one cell. {PERTURBED}")
class CooperativeFigure:
    key: list[KeyPart]
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    count: int | None
    business_volume_sum: Rupiah | None
    business_volume_average: Rupiah | None
    assets_sum: Rupiah | None
    members_sum: int | None = strawberry.field(deprecation_reason=_past_an_int("membersTotal"))

    @strawberry.field(
        description="Members of the cell's cooperatives, men and women, perturbed as its other"
        " sums are."
    )
    def members_total(self) -> Total | None:
        return None if self.members_sum is None else Total(self.members_sum)


@strawberry.type(
    description=f"MSMEs whose scale rose in the year (PP 7/2021 'naik kelas'). {PERTURBED}"
)
class GraduationFigure:
    key: list[KeyPart]
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    count: int | None


@strawberry.enum(description="What guarantee figures can be grouped by.")
class GuaranteeDimension(Enum):
    PROVINCE = "province"
    REGENCY = "regency"
    STATUS = "status"
    YEAR = "year"
    SUBJECT_KIND = "subject_kind"


OWN_GUARANTEES = (
    "Of the cell, the guarantees your client issued, exact, whether or not the cell is "
    "suppressed. The cell as a whole is suppressed unless the other guarantees in it reach k "
    "(after perturbation), however many of yours it holds."
)


@strawberry.type(description=f"Credit guarantees issued by BUMDs: access to finance. {PERTURBED}")
class GuaranteeFigure:
    key: list[KeyPart]
    suppressed: bool = strawberry.field(description=SUPPRESSED)
    count: int | None
    amount_sum: Rupiah | None
    coverage_sum: Rupiah | None
    own_count: int | None = requires(Scope.GUARANTEES_WRITE, description=OWN_GUARANTEES)
    own_amount_sum: Rupiah | None = requires(
        Scope.GUARANTEES_WRITE, description="Null where ownCount is 0."
    )
    own_coverage_sum: Rupiah | None = requires(
        Scope.GUARANTEES_WRITE, description="Null where ownCount is 0."
    )
