"""Planning indicators, their targets per jurisdiction and year, and reported realisations."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from auth.scopes import Scope
from resolvers import planning, relations
from schema.permissions import requires
from schema.scalars import ExactDecimal
from schema.types.regions import Region


@strawberry.type(description="A reported value; every report is kept.")
class Realisation:
    value: ExactDecimal
    qualifier: str | None = strawberry.field(
        description="As the source states it: more_than, at_least."
    )
    source: str
    reported_on: date | None
    reported_by: str | None = strawberry.field(
        resolver=planning.reporter,
        description=(
            "The organisation that reported it (a client registered without one, by its client "
            "id); never an SSO user's id."
        ),
    )
    recorded_at: datetime


@strawberry.type(description="A target (or baseline) of an indicator for a jurisdiction and year.")
class Target:
    year: int
    kind: str = strawberry.field(description="Either target or baseline.")
    value: ExactDecimal
    qualifier: str | None
    year_inferred: bool = strawberry.field(description="The source did not state the year.")
    source: str
    jurisdiction: Region = strawberry.field(
        resolver=relations.jurisdiction_region, metadata={"columns": ("jurisdiction",)}
    )
    indicator: Indicator = strawberry.field(resolver=relations.target_indicator)
    realisations: list[Realisation] = strawberry.field(
        resolver=relations.realisations,
        description="The latest `first` reported values, newest first (a page, like participants).",
    )
    computed_value: ExactDecimal | None = requires(
        Scope.AGGREGATES_READ,
        resolver=relations.computed_value,
        description=(
            "The indicator computed from the records, where it can be: exact, from the records "
            "as they are now, if you may read the jurisdiction's records, else perturbed and "
            "thresholded like the figures, from the latest figure release. Null where it cannot "
            "be computed, is hidden, or is not known yet: a volume of a book year no records' "
            "figures have reached is null, not 0. Perturbed, MIKRO_NAIK_KELAS is null where "
            "too few graduated to show and where none did alike, as `graduations` leaves both "
            "out, UMKM_JUMLAH where too few MSMEs are there to show and where none are, and "
            "UKM_PROPORSI where too few small and medium businesses are there to show and where "
            "none are."
        ),
    )
    progress: ExactDecimal | None = requires(
        Scope.AGGREGATES_READ,
        resolver=relations.progress,
        description=(
            "Latest reported value (else computedValue, as you see it) divided by the target."
        ),
    )


@strawberry.type(description="A planning indicator (RPJMN, RPJMD, Rakortek).")
class Indicator:
    code: str
    name_id: str = strawberry.field(description="Name in Indonesian.")
    name_en: str = strawberry.field(description="Name in English.")
    unit: str
    higher_is_better: bool
    computable_from_records: bool
    targets: list[Target] = strawberry.field(resolver=relations.targets)
    realisations: list[Realisation] = strawberry.field(
        resolver=planning.reported,
        description=(
            "The latest `first` values reported for a jurisdiction and year, newest first, "
            "whether or not a target is set for them (a page, like a target's realisations)."
        ),
    )
