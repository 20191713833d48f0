"""What a reported realisation of a planning indicator may be (docs/domain.md, Indicators)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.errors import InvalidValue
from domain.records import validate_past_date

QUALIFIER_MAX = 20
"""The `realisations.qualifier` column is varchar(20)."""

FIRST_YEAR = 2000
"""The earliest year a realisation may be reported for."""
_VALUE_MAX = Decimal(10**15)
_VALUE_PLACES = Decimal("0.000001")


def validate_indicator_value(value: Decimal, *, field: str) -> Decimal:
    """Every indicator is a count, a rupiah amount or a share of such (docs/domain.md), so no
    value is negative. The ceiling is the rupiah one (Rp1 quadrillion, domain.identifiers), far
    above any count or percentage, and six decimal places are more than a statistic is
    published with: a value is a figure that every reader of the indicator gets back, not a
    payload of thousands of digits."""
    if not 0 <= value <= _VALUE_MAX:
        raise InvalidValue(field, f"must be between 0 and {_VALUE_MAX:,}")
    if value != value.quantize(_VALUE_PLACES):
        raise InvalidValue(field, "must have at most 6 decimal places")
    return value


def validate_report_year(year: int, *, field: str, today: date) -> int:
    """A realisation is what a year achieved, reported once the year has begun (see
    `validate_reported_on`), so its year is this year at the latest: a report for next year
    would be dated before its year, today's date included."""
    if not FIRST_YEAR <= year <= today.year:
        raise InvalidValue(field, f"must be between {FIRST_YEAR} and {today.year}")
    return year


def validate_reported_on(reported_on: date, year: int | None, *, field: str, today: date) -> date:
    """The day of the report: a past date, as the other past dates, and not before 1 January of
    the year it reports on, whose achievement nobody could report before the year began.
    `year` is None when the year itself was refused: there is nothing to compare with."""
    validate_past_date(reported_on, field=field, today=today)
    if year is not None and reported_on < date(year, 1, 1):
        raise InvalidValue(
            field,
            f"is before {year}-01-01: a realisation for {year} is reported once the year has begun",
        )
    return reported_on
