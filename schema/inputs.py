"""Filters. Every field is optional; given fields combine with AND."""

from __future__ import annotations

from enum import Enum

import strawberry

from db.queries import cooperatives, msmes
from resolvers import records, reference
from resolvers.context import Context
from schema.enums import CooperativeType, Scale
from schema.types.figures import SCALE_MEMBERS_ONLY

TOOK_PART = (
    "that take or took part in this programme: a participation ACTIVE or COMPLETED, not one "
    "PROPOSED, VERIFIED (checked, not yet taking part) or WITHDRAWN."
)
MEMBERS_ONLY = (
    "Who takes part is not public: in figures, a cell of participants you may not read that is "
    "too small to show is left out, not marked suppressed."
)


@strawberry.input
class MsmeFilter:
    region: str | None = strawberry.field(
        default=None, description='A province, regency or district code: "62", "62.01".'
    )
    scale: Scale | None = strawberry.field(default=None, description=SCALE_MEMBERS_ONLY)
    kbli_section: str | None = strawberry.field(default=None, description="A-U")
    active: bool | None = None
    programme: strawberry.ID | None = strawberry.field(
        default=None, description=f"Only MSMEs {TOOK_PART} {MEMBERS_ONLY}"
    )


@strawberry.input
class CooperativeFilter:
    region: str | None = None
    type: CooperativeType | None = None
    active: bool | None = None
    programme: strawberry.ID | None = strawberry.field(
        default=None, description=f"Only cooperatives {TOOK_PART} {MEMBERS_ONLY}"
    )


def stored_value(choice: Enum | str | None) -> str | None:
    """The database value of an enum argument (Strawberry may hand over member or value)."""
    return choice.value if isinstance(choice, Enum) else choice


def _programme(programme: strawberry.ID | None) -> str | None:
    """The filter's programme, held to a programme id's rule as `programme(id:)` holds it."""
    if programme is None:
        return None
    return reference.checked_programme_id(programme, "filter.programme")


async def msme_where(context: Context, given: MsmeFilter | None) -> msmes.MsmeFilter:
    given = given or MsmeFilter()
    return msmes.MsmeFilter(
        region=await records.checked_region(context, given.region, "filter.region"),
        scale=stored_value(given.scale),
        kbli_section=records.checked_kbli_section(given.kbli_section),
        active=given.active,
        programme=_programme(given.programme),
    )


async def cooperative_where(
    context: Context, given: CooperativeFilter | None
) -> cooperatives.CooperativeFilter:
    given = given or CooperativeFilter()
    return cooperatives.CooperativeFilter(
        region=await records.checked_region(context, given.region, "filter.region"),
        type=stored_value(given.type),
        active=given.active,
        programme=_programme(given.programme),
    )
