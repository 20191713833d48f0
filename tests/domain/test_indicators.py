"""What a reported realisation may be, as pure functions."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal

import pytest

from domain.errors import InvalidValue
from domain.indicators import (
    COUNTED,
    PERCENT,
    RUPIAH,
    reporting_organisation,
    stored_reporter,
    validate_indicator_value,
    validate_report_jurisdiction,
    validate_report_year,
    validate_reported_on,
)
from sinergi.demo import SEED_DATA

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


def test_every_shipped_indicator_has_a_unit_whose_values_are_checked() -> None:
    """A unit spelled otherwise in the seed ("%", "orang") would get the general bounds alone."""
    with (SEED_DATA / "indicators.csv").open(newline="") as rows:
        units = {row["unit"] for row in csv.DictReader(rows)}
    assert units <= COUNTED | {PERCENT, RUPIAH}


@pytest.mark.parametrize(
    ("value", "unit", "reason"),
    [
        ("100.000001", PERCENT, "must be between 0 and 100 for an indicator in percent"),
        ("-0.1", PERCENT, "must be between 0 and 100 for an indicator in percent"),
        ("0.5", "persons", "must be a whole number for an indicator in persons"),
        ("1.5", "unit", "must be a whole number for an indicator in unit"),
        ("12.01", RUPIAH, "must be a whole number for an indicator in IDR"),
        ("-1", RUPIAH, "must be between 0 and 1,000,000,000,000,000"),
        ("1.1234567", None, "must have at most 6 decimal places"),
    ],
)
def test_a_value_outside_what_its_unit_takes_is_refused(
    value: str, unit: str | None, reason: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        validate_indicator_value(Decimal(value), unit, field="report.value")
    assert (refused.value.field, refused.value.reason) == ("report.value", reason)


@pytest.mark.parametrize(
    ("value", "unit"),
    [("0", PERCENT), ("100", PERCENT), ("3.84", PERCENT), ("2872.000", "persons"),
     ("222000000000", RUPIAH), ("12.345678", None)],
)  # fmt: skip
def test_a_value_its_unit_takes_is_kept(value: str, unit: str | None) -> None:
    assert validate_indicator_value(Decimal(value), unit, field="f") == Decimal(value)


@pytest.mark.parametrize("code", ["ID", "62", "62.11", "62.71"])
def test_a_realisation_is_reported_where_targets_are_set(code: str) -> None:
    assert validate_report_jurisdiction(code, field="f") == code


@pytest.mark.parametrize("code", ["62.71.01", "62.71.01.1001"])
def test_a_realisation_below_a_regency_is_refused(code: str) -> None:
    with pytest.raises(InvalidValue, match="must be the nation, a province or a regency or city"):
        validate_report_jurisdiction(code, field="report.jurisdiction")


SSO_ID = "https://sso.example.go.id/realms/pemda#198507142010011003@regency:62.71"


@pytest.mark.parametrize(
    ("organisation", "client_id", "shown"),
    [
        ("Dinas Koperasi (Diskop) #2", SSO_ID, "Dinas Koperasi (Diskop) #2"),
        ("Dinas Koperasi", "https://sso.example.go.id#x (y#z@regency:62.71", "Dinas Koperasi"),
        ("", SSO_ID, None),
        ("Koperasi (No#1) Kota", "sng_abc", "Koperasi"),
        ("Dinas (demo)", "demo-regency-6271", "Dinas (demo)"),
        ("", "sng_abc", "sng_abc"),
    ],
)
def test_a_reporter_is_shown_as_its_organisation_never_an_sso_user_s_id(
    organisation: str, client_id: str, shown: str | None
) -> None:
    """Whatever the organisation or the id holds, nothing of an external id is shown (an
    organisation that looks like the start of one is cut short, or not shown)."""
    assert reporting_organisation(stored_reporter(organisation, client_id)) == shown
    assert reporting_organisation("seed") == "seed"
    assert reporting_organisation(None) is None
