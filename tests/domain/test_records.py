"""The rules a written MSME or cooperative record must satisfy, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from domain.cooperative_records import CooperativeDraft, check_cooperative
from domain.errors import InvalidValue
from domain.identifiers import KbliSection
from domain.records import (
    CheckedMsme,
    MsmeDraft,
    OwnerDraft,
    Vocabulary,
    check_registered_msme,
    check_report_over,
    check_scale_report,
    settle_scale,
    validate_phone,
    validate_place,
)
from domain.scale import Scale

RULES = Vocabulary(
    kbli_sections=[
        KbliSection("A", "Pertanian", 1, 3),
        KbliSection("C", "Industri Pengolahan", 10, 33),
        KbliSection("G", "Perdagangan", 45, 47),
    ],
    regencies=frozenset({"62.71", "62.01", "64.01"}),
    today=date(2026, 1, 15),
)
DRAFT = MsmeDraft(
    nib="9990000000001",
    name="  Keripik   Kelakai ",
    kbli_code="10794",
    region="62.71",
    district="62.71.03",
    capital=150_000_000,
    annual_turnover=240_000_000,
    turnover_year=2025,
    employees=3,
    owner=OwnerDraft(nik="6271995204880001", full_name="Sri Rahayu", sex="f", phone="0812-000"),
)


def test_a_valid_draft_becomes_the_values_to_store() -> None:
    checked = check_registered_msme(DRAFT, RULES)
    assert isinstance(checked, CheckedMsme)
    assert (checked.name, checked.kbli_section, checked.scale) == ("Keripik Kelakai", "C", "micro")
    assert (checked.province_code, checked.regency_code) == ("62", "62.71")
    assert checked.owner is not None
    assert (checked.owner.sex, checked.owner.phone) == ("F", "0812000")


def test_every_broken_rule_is_reported_with_the_callers_field_names() -> None:
    draft = replace(DRAFT, nib="123", kbli_code="04000", turnover_year=2027)
    errors = check_registered_msme(draft, RULES, name=lambda field: f"input.{field}")
    assert isinstance(errors, list)
    assert [error.field for error in errors] == [
        "input.nib",
        "input.kbliCode",
        "input.turnoverYear",
    ]


def test_a_business_registered_by_sku_alone_has_no_nib_to_store() -> None:
    draft = replace(DRAFT, nib=None, sku_number=" 470/12/kel ", sku_issuer="62.71.03.1002")
    checked = check_registered_msme(draft, RULES)
    assert isinstance(checked, CheckedMsme)
    assert (checked.nib, checked.sku_number, checked.sku_issuer) == (
        None,
        "470/12/KEL",
        "62.71.03.1002",
    )


def test_the_owner_nik_is_checked_and_never_quoted() -> None:
    draft = replace(DRAFT, owner=OwnerDraft(nik="6271991513880001", full_name="Sri"))
    errors = check_registered_msme(draft, RULES)
    assert isinstance(errors, list)
    assert [error.field for error in errors] == ["owner.nik"]
    assert "6271991513880001" not in str(errors[0])


@pytest.mark.parametrize(
    ("declared", "capital", "sales", "expected"),
    [
        (None, 150_000_000, 240_000_000, Scale.MICRO),
        (None, 3_000_000_000, None, Scale.SMALL),
        # Capital supports the declaration, so it is accepted; the sales still decide.
        (Scale.SMALL, 3_000_000_000, 240_000_000, Scale.MICRO),
        (Scale.MICRO, 900_000_000, 20_000_000_000, Scale.MEDIUM),
        (Scale.SMALL, 3_000_000_000, None, Scale.SMALL),
        (Scale.MEDIUM, None, None, Scale.MEDIUM),  # no figures: the declaration is all there is
    ],
)
def test_the_stored_scale_is_computed_from_the_figures_and_declared_only_without_them(
    declared: Scale | None, capital: int | None, sales: int | None, expected: Scale
) -> None:
    assert settle_scale(declared, capital=capital, annual_sales=sales, field="scale") == expected


def test_a_declared_scale_the_figures_contradict_or_no_scale_at_all_is_refused() -> None:
    with pytest.raises(InvalidValue, match="does not fit"):
        settle_scale(Scale.MEDIUM, capital=1, annual_sales=1, field="scale")
    with pytest.raises(InvalidValue, match="required"):
        settle_scale(None, capital=None, annual_sales=None, field="scale")


@pytest.mark.parametrize(
    ("region", "district", "field"),
    [
        ("62", None, "region"),
        ("ID", None, "region"),
        ("62.71.03", None, "region"),
        ("62.71", "62.01.05", "district"),
        ("62.71", "62.71", "district"),
    ],
)
def test_a_place_is_a_regency_and_optionally_one_of_its_kecamatan(
    region: str, district: str | None, field: str
) -> None:
    with pytest.raises(InvalidValue) as raised:
        validate_place(region, district, region_field="region", district_field="district")
    assert raised.value.field == field


def test_phone_numbers_lose_their_separators_but_must_be_digits() -> None:
    assert validate_phone("+62 (812) 000-0001", field="phone") == "+628120000001"
    with pytest.raises(InvalidValue):
        validate_phone("call me", field="phone")


def test_a_cooperative_draft_is_checked_like_an_msme() -> None:
    draft = CooperativeDraft(
        legal_entity_no="ahu-0000032.ah.01.26.tahun 2019",
        name="Koperasi Produsen Lestari",
        type="produsen",
        region="62.01",
        kbli_code="10431",
        members_male=10,
        members_female=12,
        surplus=-5_000_000,  # a loss year
    )
    checked = check_cooperative(draft, RULES)
    assert not isinstance(checked, list)
    assert checked.legal_entity_no == "AHU-0000032.AH.01.26.TAHUN 2019"
    errors = check_cooperative(replace(draft, type="bank", members_male=-1), RULES)
    assert isinstance(errors, list)
    assert [error.field for error in errors] == ["type", "membersMale"]


COOPERATIVE = CooperativeDraft(
    legal_entity_no="AHU-0000032.AH.01.26.TAHUN 2019",
    name="Koperasi Produsen Lestari",
    type="produsen",
    region="62.01",
    established_on=date(2015, 6, 1),
    book_year=2015,
    last_rat_date=date(2016, 3, 1),
    last_rat_book_year=2015,
)

INCONSISTENT_COOPERATIVE_DATES = {
    # case -> (the draft's dates, the field named, its reason)
    "a RAT held before the deed": (
        {"last_rat_date": date(2015, 5, 31), "last_rat_book_year": None},
        "lastRatDate",
        "is before the cooperative was established (2015-06-01)",
    ),
    "a RAT on the book year it was held in": (
        {"last_rat_book_year": 2016},
        "lastRatBookYear",
        "must be before 2016, the year of the last RAT: a RAT reviews a book year that has closed",
    ),
    "a RAT on a later book year than it was held in": (
        {"last_rat_book_year": 2020},
        "lastRatBookYear",
        "must be before 2016, the year of the last RAT: a RAT reviews a book year that has closed",
    ),
    "a RAT, undated, on this year's book year": (
        {"last_rat_date": None, "last_rat_book_year": 2026},
        "lastRatBookYear",
        "must be before 2026: a RAT reviews a book year that has closed",
    ),
    "a RAT on a book year before the deed": (
        {"last_rat_book_year": 2014},
        "lastRatBookYear",
        "is before 2015, the year the cooperative was established",
    ),
    "figures of a book year before the deed": (
        {"book_year": 2014},
        "bookYear",
        "is before 2015, the year the cooperative was established",
    ),
}


@pytest.mark.parametrize("case", list(INCONSISTENT_COOPERATIVE_DATES))
def test_a_cooperative_s_dates_must_agree_with_each_other(case: str) -> None:
    """R11 reads the last RAT's book year: one on a year not yet closed, or from before the
    cooperative existed, would pass a guarantee check it should not."""
    dates, field, reason = INCONSISTENT_COOPERATIVE_DATES[case]
    errors = check_cooperative(replace(COOPERATIVE, **dates), RULES, name=lambda f: f"input.{f}")
    assert isinstance(errors, list)
    assert [(error.field, error.reason) for error in errors] == [(f"input.{field}", reason)]


def test_consistent_cooperative_dates_pass_at_their_bounds() -> None:
    """A RAT on the day of the deed, a RAT for the founding year in the next, figures of the
    founding year, a RAT for last year: each agrees with the others."""
    assert not isinstance(check_cooperative(COOPERATIVE, RULES), list)
    on_the_deed = replace(COOPERATIVE, last_rat_date=date(2015, 6, 1), last_rat_book_year=None)
    assert not isinstance(check_cooperative(on_the_deed, RULES), list)
    last_year = replace(COOPERATIVE, last_rat_date=None, last_rat_book_year=2025)
    assert not isinstance(check_cooperative(last_year, RULES), list)
    undated = replace(COOPERATIVE, established_on=None, book_year=1990, last_rat_book_year=1990)
    assert not isinstance(check_cooperative(undated, RULES), list)


def test_every_inconsistent_cooperative_date_is_reported() -> None:
    """The attack's record: a RAT before the deed, on a book year not yet closed, and figures
    of a book year before the deed. A date already refused on its own is not compared."""
    attack = replace(
        COOPERATIVE,
        established_on=date(2019, 1, 1),
        last_rat_date=date(1901, 1, 1),
        last_rat_book_year=2026,
        book_year=1900,
    )
    errors = check_cooperative(attack, RULES)
    assert isinstance(errors, list)
    assert [error.field for error in errors] == ["bookYear", "lastRatDate", "lastRatBookYear"]
    too_early = replace(COOPERATIVE, established_on=date(1899, 1, 1), book_year=1900)
    errors = check_cooperative(too_early, RULES)
    assert isinstance(errors, list)
    assert [error.field for error in errors] == ["establishedOn"]


def _scale_report(
    *,
    annual_sales: int = 3_000_000_000,
    capital: int | None = None,
    turnover_year: int = 2025,
    effective_from: date = date(2026, 1, 2),
) -> list[tuple[str, str]]:
    errors = check_scale_report(
        annual_sales=annual_sales,
        capital=capital,
        turnover_year=turnover_year,
        effective_from=effective_from,
        today=RULES.today,
        name=lambda field: f"report.{field}",
    )
    return [(error.field, error.reason) for error in errors]


def test_a_scale_change_rests_on_sales_of_its_year_or_an_earlier_one() -> None:
    """Sales of the year the change takes effect in may ground it (they have passed the
    threshold by then); a later year's sales had not been made."""
    assert _scale_report() == []
    assert _scale_report(turnover_year=2026) == []
    assert _scale_report(turnover_year=2024, effective_from=date(2024, 12, 31)) == []
    assert _scale_report(turnover_year=2025, effective_from=date(2024, 12, 31)) == [
        (
            "report.turnoverYear",
            "must not be after 2024, the year of effectiveFrom: "
            "a scale cannot rest on sales not yet made when it took effect",
        )
    ]


def test_every_broken_rule_of_a_scale_report_is_listed() -> None:
    """A change dated in the future is refused on its own: its year is compared with nothing."""
    assert [
        field
        for field, _ in _scale_report(
            annual_sales=-1, capital=-1, turnover_year=1899, effective_from=date(2026, 1, 16)
        )
    ] == ["report.annualSales", "report.capital", "report.turnoverYear", "report.effectiveFrom"]
    assert _scale_report(effective_from=date(2026, 1, 16)) == [
        ("report.effectiveFrom", "must not be in the future")
    ]


STORED_BEFORE_2019 = "AHU-0007741.AH.01.26.TAHUN 2015"
"""A Kemenkumham number of a year before 2019, stored before years were bounded."""


@pytest.mark.parametrize(
    "sent",
    [
        STORED_BEFORE_2019,
        "AHU-7741.AH.01.26.TAHUN 2015",
        "ahu-0007741.ah.01.26.tahun   2015",
    ],
)
def test_a_stored_number_sent_back_in_another_spelling_is_kept_as_stored(sent: str) -> None:
    """A lookup takes every spelling of a number as that number: a draft carrying the stored
    number in another spelling leaves it as stored, unjudged (its year is before 2019), as
    the same spelling did; it was refused."""
    checked = check_cooperative(
        replace(COOPERATIVE, legal_entity_no=sent), RULES, stored_number=STORED_BEFORE_2019
    )
    assert not isinstance(checked, list), checked
    assert checked.legal_entity_no == STORED_BEFORE_2019


def test_another_number_than_the_stored_one_is_judged() -> None:
    checked = check_cooperative(
        replace(COOPERATIVE, legal_entity_no="AHU-0007742.AH.01.26.TAHUN 2015"),
        RULES,
        stored_number=STORED_BEFORE_2019,
    )
    assert isinstance(checked, list)
    assert [error.field for error in checked] == ["legalEntityNo"]


@pytest.mark.parametrize(
    ("year", "stored", "established", "fields"),
    [
        (2025, 2025, date(2025, 3, 1), []),  # the same year corrects the figures on record
        (2026, 2025, None, []),
        (2025, None, None, []),
        (2024, 2025, None, ["report.turnoverYear"]),  # older than the figures on record
        (2024, None, date(2025, 3, 1), ["report.turnoverYear"]),  # before it existed
        (1950, 2025, date(2025, 3, 1), ["report.turnoverYear", "report.turnoverYear"]),
    ],
)
def test_a_report_rests_on_sales_of_a_year_the_business_existed_and_no_older_than_stored(
    year: int, stored: int | None, established: date | None, fields: list[str]
) -> None:
    errors = check_report_over(
        turnover_year=year,
        stored_year=stored,
        established_on=established,
        name=lambda field: f"report.{field}",
    )
    assert [error.field for error in errors] == fields
