"""PP 7/2021 scale rules: every threshold at its edge, since "up to and including" is the point."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.scale import (
    CORRECTION,
    CORRECTIONS,
    GRADUATIONS,
    MICRO_GRADUATIONS,
    RULE_VERSION,
    Scale,
    check_declared_scale,
    classify,
    entry_rule_version,
    kept_declaration,
    scale_by_capital,
    scale_by_sales,
    standing_declaration,
)

MILIAR = 1_000_000_000


def test_the_rule_version_names_the_regulation() -> None:
    assert RULE_VERSION == "PP7_2021"


def test_scales_are_stored_as_lowercase_words() -> None:
    assert [str(scale) for scale in Scale] == ["micro", "small", "medium", "large"]


@pytest.mark.parametrize(
    ("capital", "scale"),
    [
        (0, Scale.MICRO),
        (1 * MILIAR, Scale.MICRO),
        (1 * MILIAR + 1, Scale.SMALL),
        (5 * MILIAR, Scale.SMALL),
        (5 * MILIAR + 1, Scale.MEDIUM),
        (10 * MILIAR, Scale.MEDIUM),
        (10 * MILIAR + 1, Scale.LARGE),
    ],
)
def test_capital_thresholds_include_their_upper_bound(capital: int, scale: Scale) -> None:
    assert scale_by_capital(capital) is scale


@pytest.mark.parametrize(
    ("sales", "scale"),
    [
        (0, Scale.MICRO),
        (2 * MILIAR, Scale.MICRO),
        (2 * MILIAR + 1, Scale.SMALL),
        (15 * MILIAR, Scale.SMALL),
        (15 * MILIAR + 1, Scale.MEDIUM),
        (50 * MILIAR, Scale.MEDIUM),
        (50 * MILIAR + 1, Scale.LARGE),
    ],
)
def test_sales_thresholds_include_their_upper_bound(sales: int, scale: Scale) -> None:
    assert scale_by_sales(sales) is scale


def test_sales_of_exactly_two_billion_is_still_micro() -> None:
    assert scale_by_sales(2 * MILIAR) is Scale.MICRO


def test_negative_capital_is_rejected() -> None:
    with pytest.raises(InvalidValue) as caught:
        scale_by_capital(-1)
    assert caught.value.field == "capital"


def test_negative_sales_are_rejected() -> None:
    with pytest.raises(InvalidValue) as caught:
        scale_by_sales(-1)
    assert caught.value.field == "annualSales"


def test_annual_sales_decide_the_scale_when_known() -> None:
    assert classify(capital=900_000_000, annual_sales=2_600_000_000) is Scale.SMALL
    assert classify(capital=12 * MILIAR, annual_sales=1 * MILIAR) is Scale.MICRO


def test_capital_decides_the_scale_when_sales_are_unknown() -> None:
    assert classify(capital=40_000_000, annual_sales=None) is Scale.MICRO
    assert classify(capital=6 * MILIAR, annual_sales=None) is Scale.MEDIUM


def test_zero_sales_are_known_sales() -> None:
    assert classify(capital=6 * MILIAR, annual_sales=0) is Scale.MICRO


def test_the_scale_is_unknown_without_figures() -> None:
    assert classify(capital=None, annual_sales=None) is None


_ORDER = list(Scale)
_AMOUNTS = st.integers(min_value=0, max_value=10**15)


@given(_AMOUNTS, _AMOUNTS, st.one_of(st.none(), _AMOUNTS))
def test_more_sales_never_mean_a_smaller_scale(low: int, high: int, capital: int | None) -> None:
    low, high = sorted((low, high))
    smaller = classify(capital=capital, annual_sales=low)
    larger = classify(capital=capital, annual_sales=high)
    assert smaller is not None
    assert larger is not None
    assert _ORDER.index(smaller) <= _ORDER.index(larger)


@given(_AMOUNTS, _AMOUNTS)
def test_more_capital_never_means_a_smaller_scale(low: int, high: int) -> None:
    low, high = sorted((low, high))
    assert _ORDER.index(scale_by_capital(low)) <= _ORDER.index(scale_by_capital(high))


@pytest.mark.parametrize(
    ("before", "after"),
    [(Scale.MICRO, Scale.SMALL), (Scale.MICRO, Scale.MEDIUM), (Scale.SMALL, Scale.MEDIUM)],
)
def test_growing_within_msme_scales_is_a_graduation(before: Scale, after: Scale) -> None:
    assert (before, after) in GRADUATIONS


def test_only_a_micro_business_graduates_as_usaha_mikro_naik_kelas() -> None:
    """MIKRO_NAIK_KELAS counts micro enterprises that became small or medium; small to medium is
    a step up, but not of a micro enterprise."""
    assert {(Scale.MICRO, Scale.SMALL), (Scale.MICRO, Scale.MEDIUM)} == MICRO_GRADUATIONS
    assert (Scale.SMALL, Scale.MEDIUM) not in MICRO_GRADUATIONS


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Scale.MICRO, Scale.MICRO),
        (Scale.SMALL, Scale.SMALL),
        (Scale.SMALL, Scale.MICRO),
        (Scale.MEDIUM, Scale.SMALL),
        (Scale.MICRO, Scale.LARGE),
        (Scale.SMALL, Scale.LARGE),
        (Scale.MEDIUM, Scale.LARGE),
        (Scale.LARGE, Scale.MEDIUM),
        (Scale.LARGE, Scale.LARGE),
    ],
)
def test_standing_still_shrinking_or_growing_into_large_is_not_a_graduation(
    before: Scale, after: Scale
) -> None:
    assert (before, after) not in GRADUATIONS


def test_the_demo_caterer_graduated_from_micro_to_small_in_2025() -> None:
    before = classify(capital=900_000_000, annual_sales=1_800_000_000)
    after = classify(capital=900_000_000, annual_sales=2_600_000_000)
    assert before is not None
    assert after is not None
    assert (before, after) in MICRO_GRADUATIONS


@pytest.mark.parametrize(
    ("declared", "capital", "sales"),
    [
        (Scale.MICRO, None, None),
        (Scale.LARGE, None, None),
        (Scale.MICRO, 1 * MILIAR, None),
        (Scale.SMALL, None, 15 * MILIAR),
        (Scale.MICRO, 900_000_000, 2_600_000_000),  # capital supports micro
        (Scale.SMALL, 900_000_000, 2_600_000_000),  # sales support small
        (Scale.LARGE, 11 * MILIAR, 1),
    ],
)
def test_a_declared_scale_supported_by_either_figure_is_consistent(
    declared: Scale, capital: int | None, sales: int | None
) -> None:
    check_declared_scale(declared, capital=capital, annual_sales=sales)


@pytest.mark.parametrize(
    ("declared", "capital", "sales"),
    [
        (Scale.MICRO, 1 * MILIAR + 1, None),
        (Scale.SMALL, None, 2 * MILIAR),
        (Scale.MEDIUM, 900_000_000, 2_600_000_000),
        (Scale.LARGE, 10 * MILIAR, 50 * MILIAR),
    ],
)
def test_a_declared_scale_neither_figure_supports_is_rejected(
    declared: Scale, capital: int | None, sales: int | None
) -> None:
    with pytest.raises(InvalidValue) as caught:
        check_declared_scale(declared, capital=capital, annual_sales=sales, field="input.scale")
    assert caught.value.field == "input.scale"


def test_the_rejection_names_the_thresholds_of_the_declared_scale() -> None:
    with pytest.raises(InvalidValue) as caught:
        check_declared_scale(Scale.MEDIUM, capital=900_000_000, annual_sales=2_600_000_000)
    assert caught.value.field == "scale"
    assert "PP 7/2021" in caught.value.reason
    assert "capital over Rp5,000,000,000 up to Rp10,000,000,000" in caught.value.reason
    assert "annual sales over Rp15,000,000,000 up to Rp50,000,000,000" in caught.value.reason


def test_the_rejection_names_only_the_criteria_that_were_given() -> None:
    with pytest.raises(InvalidValue) as caught:
        check_declared_scale(Scale.MICRO, capital=None, annual_sales=3 * MILIAR)
    assert "annual sales up to Rp2,000,000,000" in caught.value.reason
    assert "capital" not in caught.value.reason


def test_the_rejection_of_large_names_its_open_lower_bound() -> None:
    with pytest.raises(InvalidValue) as caught:
        check_declared_scale(Scale.LARGE, capital=1, annual_sales=None)
    assert "capital over Rp10,000,000,000" in caught.value.reason


@pytest.mark.parametrize(
    ("declared", "capital", "annual_turnover", "given", "kept"),
    [
        (
            "micro",
            900_000_000,
            20 * MILIAR,
            {"name": "A"},
            Scale.MICRO,
        ),  # figures stand: so does it
        ("micro", 900_000_000, 20 * MILIAR, {"capital": MILIAR}, None),  # new figures drop it
        ("micro", 900_000_000, 20 * MILIAR, {"annual_turnover": 21 * MILIAR}, None),
        ("micro", 900_000_000, 20 * MILIAR, {"annual_turnover": None}, None),
        # figures sent as stored change nothing
        ("micro", 900_000_000, 20 * MILIAR, {"capital": 900_000_000}, Scale.MICRO),
        (
            "micro",
            900_000_000,
            20 * MILIAR,
            {"capital": 900_000_000, "annual_turnover": 20 * MILIAR},
            Scale.MICRO,
        ),
        # contradicted by the stored figures (a report before reports cleared it): dropped
        ("small", 100_000_000, 100_000_000, {"name": "A"}, None),
        (None, 900_000_000, 20 * MILIAR, {"name": "A"}, None),  # nothing declared
        (
            None,
            None,
            None,
            {"name": "A"},
            Scale.SMALL,
        ),  # no figures before 0037: its scale declared
        (None, None, None, {"capital": 1, "name": "A"}, None),
        (None, None, None, {"capital": None}, Scale.SMALL),  # still none: nothing changed
    ],
)
def test_a_write_declaring_no_scale_keeps_the_stored_declaration_while_the_figures_stand(
    declared: str | None,
    capital: int | None,
    annual_turnover: int | None,
    given: dict[str, object],
    kept: Scale | None,
) -> None:
    """The rule `updateMsme` and an import's row share (resolvers/msme_writes.py `_merged`,
    domain/register_csv.py `as_stored`)."""
    assert (
        kept_declaration(
            declared=declared,
            scale="small",
            capital=capital,
            annual_turnover=annual_turnover,
            given=given,
        )
        is kept
    )


@pytest.mark.parametrize(
    ("capital", "sales", "standing"),
    [
        (2 * MILIAR, 100_000_000, Scale.SMALL),  # the capital still supports it
        (None, 3 * MILIAR, Scale.SMALL),
        (100_000_000, 100_000_000, None),  # neither does: cleared
        (None, 100_000_000, None),
    ],
)
def test_a_report_keeps_the_declaration_only_while_a_figure_supports_it(
    capital: int | None, sales: int, standing: Scale | None
) -> None:
    assert standing_declaration("small", capital=capital, annual_sales=sales) is standing
    assert standing_declaration(None, capital=capital, annual_sales=sales) is None


@pytest.mark.parametrize(
    ("turnover_year", "previous_year", "rule_version"),
    [
        (2025, None, RULE_VERSION),  # a first entry corrects nothing
        (None, None, RULE_VERSION),
        (2026, 2025, RULE_VERSION),  # a new year's figures
        (2025, 2025, CORRECTION),  # the same year's, fixed
        (2024, 2025, CORRECTION),  # an earlier year's
        (None, 2025, CORRECTION),  # of no known year
    ],
)
def test_an_update_of_the_same_years_figures_is_a_correction(
    turnover_year: int | None, previous_year: int | None, rule_version: str
) -> None:
    assert entry_rule_version(turnover_year, previous_year) == rule_version
    assert (rule_version in CORRECTIONS) is (rule_version == CORRECTION)
