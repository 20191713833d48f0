"""What a reported realisation may be, as pure functions."""

from __future__ import annotations

from datetime import date

import pytest

from domain.errors import InvalidValue
from domain.indicators import validate_report_year, validate_reported_on

TODAY = date(2026, 3, 10)


@pytest.mark.parametrize("year", [1999, 2027])
def test_a_realisation_is_of_a_year_from_2000_to_this_one(year: int) -> None:
    """Next year is refused too: a report for it would be dated before it began."""
    with pytest.raises(InvalidValue) as refused:
        validate_report_year(year, field="report.year", today=TODAY)
    assert (refused.value.field, refused.value.reason) == (
        "report.year",
        "must be between 2000 and 2026",
    )


@pytest.mark.parametrize("year", [2000, 2026])
def test_this_year_and_the_first_are_years_a_realisation_may_be_of(year: int) -> None:
    assert validate_report_year(year, field="report.year", today=TODAY) == year


def test_a_report_dated_before_its_year_began_is_refused() -> None:
    with pytest.raises(InvalidValue) as refused:
        validate_reported_on(date(2025, 12, 31), 2026, field="report.reportedOn", today=TODAY)
    assert (refused.value.field, refused.value.reason) == (
        "report.reportedOn",
        "is before 2026-01-01: a realisation for 2026 is reported once the year has begun",
    )


@pytest.mark.parametrize(
    ("reported_on", "year"),
    [(date(2026, 1, 1), 2026), (TODAY, 2026), (date(2025, 1, 1), 2019), (date(2025, 6, 1), None)],
)
def test_a_report_dated_in_its_year_or_after_is_taken(reported_on: date, year: int | None) -> None:
    """From its first day on; a year refused on its own leaves nothing to compare with."""
    assert validate_reported_on(reported_on, year, field="f", today=TODAY) == reported_on


def test_a_report_date_is_still_a_past_date() -> None:
    with pytest.raises(InvalidValue, match="must be a date from 1900-01-01 to 2026-03-10"):
        validate_reported_on(date(2026, 3, 11), 2026, field="f", today=TODAY)
