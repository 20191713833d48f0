"""Realisations reported by provinces and regencies against their targets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from strawberry.types import Info

from db.queries import Record, indicators
from resolvers.calendar import today
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.records import checked_region


@dataclass(frozen=True, slots=True)
class Report:
    indicator: str
    jurisdiction: str
    year: int
    value: Decimal
    source: str
    reported_on: date | None
    qualifier: str | None


async def report(info: Info[Context, Any], new: Report) -> Record:
    principal = info.context.principal
    region = await checked_region(info.context, new.jurisdiction, "report.jurisdiction")
    assert region is not None
    if not info.context.policy.places(region):
        raise coded_error(
            ErrorCode.FORBIDDEN,
            f"report.jurisdiction: {region} is outside your jurisdiction",
            field="report.jurisdiction",
        )
    if await info.context.loaders.indicator.load(new.indicator) is None:
        raise bad_input("report.indicator", f"unknown indicator {new.indicator!r}")
    if not 2000 <= new.year <= today().year + 1:
        raise bad_input("report.year", f"must be between 2000 and {today().year + 1}")
    if not new.source.strip():
        raise bad_input("report.source", "say where the figure comes from")
    if new.reported_on is not None and new.reported_on > today():
        raise bad_input("report.reportedOn", "must not be in the future")
    async with info.context.transaction() as connection:
        return await indicators.add_realisation(
            connection,
            {
                "indicator_code": new.indicator,
                "jurisdiction": region,
                "year": new.year,
                "value": new.value,
                "qualifier": new.qualifier,
                "source": new.source.strip(),
                "reported_on": new.reported_on or today(),
                "reported_by": f"{principal.organisation or principal.client_id} "
                f"({principal.client_id})",
            },
        )
