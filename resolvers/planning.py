"""Realisations reported by provinces and regencies, and read back by indicator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from strawberry import Parent
from strawberry.types import Info

from db.queries import Record, indicators
from domain.errors import InvalidValue
from domain.indicators import (
    reporting_organisation,
    stored_reporter,
    validate_indicator_value,
    validate_qualifier,
    validate_report_jurisdiction,
    validate_report_year,
    validate_reported_on,
)
from domain.records import NOTE_MAX, Collector, validate_text
from resolvers import Node, relations
from resolvers.calendar import today
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.records import known_region
from resolvers.reference import checked_indicator_code
from resolvers.writing import invalid


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
    # Every rule the report breaks, as a record write reports them (resolvers.writing.invalid).
    got = Collector()
    region: str | None = None
    try:
        region = await known_region(info.context, new.jurisdiction, "report.jurisdiction")
    except InvalidValue as error:
        got.errors.append(error)
    if region is not None and not info.context.policy.places(region):
        raise coded_error(
            ErrorCode.FORBIDDEN,
            f"report.jurisdiction: {region} is outside your jurisdiction",
            field="report.jurisdiction",
        )
    now = today()
    code = got.take(lambda: checked_indicator_code(new.indicator, "report.indicator"))
    indicator = None if code is None else await info.context.loaders.indicator.load(code)
    if code is not None and indicator is None:
        got.errors.append(InvalidValue("report.indicator", f"unknown indicator {code!r}"))
    got.optional(
        region, lambda code: validate_report_jurisdiction(code, field="report.jurisdiction")
    )
    year = got.take(lambda: validate_report_year(new.year, field="report.year", today=now))
    unit = None if indicator is None else indicator.unit
    value = got.take(lambda: validate_indicator_value(new.value, unit, field="report.value"))
    source = got.take(lambda: validate_text(new.source, field="report.source", max_length=NOTE_MAX))
    qualifier = got.optional(
        new.qualifier, lambda given: validate_qualifier(given, field="report.qualifier")
    )
    got.optional(
        new.reported_on,
        lambda given: validate_reported_on(given, year, field="report.reportedOn", today=now),
    )
    if got.errors:
        raise invalid(got.errors)
    async with info.context.transaction() as connection:
        return await indicators.add_realisation(
            connection,
            {
                "indicator_code": new.indicator,
                "jurisdiction": region,
                "year": new.year,
                "value": value,
                "qualifier": qualifier,
                "source": source,
                "reported_on": new.reported_on or now,
                "reported_by": stored_reporter(principal.organisation, principal.client_id),
            },
        )


async def reported(
    root: Parent[Node],
    info: Info[Context, Any],
    jurisdiction: str,
    year: int,
    first: int | None = None,
) -> list[Node]:
    """The latest reports of a jurisdiction and year, whether or not a target answers them:
    a production database has no targets until it loads its own, and a regency none in the
    demo, so read through targets alone, reports were kept for no reader. The key is checked
    as a report's is."""
    try:
        region = await known_region(info.context, jurisdiction, "jurisdiction")
        checked = validate_report_year(year, field="year", today=today())
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None
    return await relations.reports(info, (root.code, region, checked), first)


def reporter(root: Parent[Node]) -> str | None:
    """The organisation that reported, never the client id of an SSO's principal
    (`domain.indicators.reporting_organisation`)."""
    return reporting_organisation(root.reported_by)
