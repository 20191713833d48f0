"""Reading a register's CSV row into a draft: empty cells, separators, dates, owners."""

from __future__ import annotations

import re
from datetime import date

import pytest

from domain.identifiers import KbliSection
from domain.records import Vocabulary, check_registered_msme
from domain.register_csv import (
    WHOLE_ROW,
    absent_fields,
    as_stored,
    column_name,
    draft_from_cells,
    draft_from_record,
    missing_columns,
    whole_number,
)
from domain.scale import Scale

ROW = {
    "nib": " 9990000000002 ",
    "name": "Boga Lada",
    "kbli": "56290",
    "region": "62.01",
    "district": "",
    "established": "2019-06-15",
    "capital": "900.000.000",
    "turnover": "2,600,000,000",
    "turnover_year": "2025",
    "employees": "14",
    "scale": "Small",
    "note": "ignored",
}


NOT_A_NUMBER = "must be a whole number in digits (thousands may be grouped by . or ,)"


def test_a_row_becomes_a_draft_with_typed_values() -> None:
    draft, unread = draft_from_cells(ROW)
    assert unread == []
    assert draft.nib == "9990000000002"
    assert (draft.capital, draft.annual_turnover) == (900_000_000, 2_600_000_000)
    assert (draft.established_on, draft.scale, draft.district) == (
        date(2019, 6, 15),
        Scale.SMALL,
        None,
    )
    assert draft.owner is None


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("capital", "9e8"),
        ("capital", "1.000,5"),
        ("turnover", "-5"),
        ("employees", "tiga"),
        ("established", "15/06/2019"),
        ("established", "20190615"),  # read by date.fromisoformat, not YYYY-MM-DD
        ("established", "2019W241"),  # an ISO week date, likewise
        ("scale", "mikro"),
        ("owner_birth_date", "1988-13-01"),
        ("owner_birth_date", "19880301"),
    ],
)
def test_unreadable_cells_are_reported_by_column(column: str, value: str) -> None:
    _, unread = draft_from_cells({**ROW, column: value, "owner_nik": "x", "owner_name": "y"})
    assert [error.field for error in unread] == [column]


@pytest.mark.parametrize(
    ("raw", "read"),
    [("150000000", 150_000_000), ("150.000.000", 150_000_000), ("150,000,000", 150_000_000)],
)
def test_a_whole_number_may_group_its_thousands(raw: str, read: int) -> None:
    assert whole_number(raw) == read


@pytest.mark.parametrize(
    ("raw", "grouped", "rupiah", "reason"),
    [
        ("1.234.567,89", True, True, "must be whole rupiah, without a decimal part"),
        ("1,234,567.89", True, True, "must be whole rupiah, without a decimal part"),
        ("1.000,5", True, True, "must be whole rupiah, without a decimal part"),
        ("12,5", True, False, "must be a whole number, without a decimal part"),
        ("-5", True, True, "must not be negative"),
        ("-1.000.000", True, True, "must not be negative"),
        ("-", True, False, NOT_A_NUMBER),
        ("sepuluh juta", True, True, NOT_A_NUMBER),
        ("1.000.00", True, True, "must be whole rupiah, without a decimal part"),
        ("1.2.3", True, True, NOT_A_NUMBER),
        ("9e8", True, True, NOT_A_NUMBER),
        ("2.025", False, False, "must be digits only, without a thousands separator"),
        ("2,025", False, False, "must be digits only, without a thousands separator"),
        ("2025.0", False, False, "must be a whole number, without a decimal part"),
        ("-2025", False, False, "must not be negative"),
        ("tahun 2025", False, False, "must be a whole number in digits"),
    ],
)
def test_a_number_that_is_not_read_is_refused_saying_what_is_wrong(
    raw: str, grouped: bool, rupiah: bool, reason: str
) -> None:
    """The bug: every refusal said "must be a whole number (digits only)", though thousands
    separators are taken, and a decimal part or a sign went unnamed."""
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        whole_number(raw, grouped=grouped, rupiah=rupiah)


def test_a_year_takes_no_thousands_separator_where_amounts_and_counts_do() -> None:
    """The bug: a `turnover_year` of "2.025" was read as 2025, as an amount's "2.025" is."""
    draft, unread = draft_from_cells({**ROW, "turnover_year": "2.025", "employees": "1.500"})
    assert [(error.field, error.reason) for error in unread] == [
        ("turnover_year", "must be digits only, without a thousands separator")
    ]
    assert (draft.turnover_year, draft.employees) == (None, 1_500)


RULES = Vocabulary(
    kbli_sections=[KbliSection("I", "Akomodasi dan Makan Minum", 55, 56)],
    regencies=frozenset({"62.01"}),
    today=date(2026, 1, 15),
)


def _problems(cells: dict[str, str]) -> list[tuple[str, str]]:
    draft, unread = draft_from_cells(cells)
    checked = check_registered_msme(draft, RULES, name=column_name, unread=unread)
    assert isinstance(checked, list)
    return sorted((error.field, error.reason) for error in checked)


def test_a_cell_that_does_not_parse_is_reported_with_the_rows_other_problems() -> None:
    """The bug: a cell that did not parse hid every other problem of its row (the mutation
    reports them all at once), so a row was fixed one error per run."""
    assert _problems({**ROW, "nib": "123", "capital": "sembilan ratus juta", "employees": "-"}) == [
        ("capital", NOT_A_NUMBER),
        ("employees", NOT_A_NUMBER),
        ("nib", "must be exactly 13 digits"),
    ]


def test_no_scale_is_settled_from_figures_a_cell_left_out() -> None:
    """The scale is neither checked against a turnover that did not parse (small does not fit
    the capital alone) nor required when the scale cell itself did not parse."""
    assert _problems({**ROW, "turnover": "2,6 milyar", "capital": "100000000"}) == [
        ("turnover", NOT_A_NUMBER)
    ]
    assert _problems({**ROW, "scale": "kecil", "capital": "", "turnover": ""}) == [
        ("scale", "must be micro, small, medium or large")
    ]


def test_an_owner_is_read_only_when_an_owner_column_is_filled() -> None:
    draft, unread = draft_from_cells({**ROW, "owner_nik": "6201990311790001", "owner_name": "Budi"})
    assert unread == []
    assert draft.owner is not None
    assert (draft.owner.nik, draft.owner.full_name) == ("6201990311790001", "Budi")


def test_required_columns_and_error_names_follow_the_file() -> None:
    assert missing_columns(["NIB", "Name", "kbli"]) == ["region"]
    assert column_name("owner.fullName") == "owner_name"
    assert column_name("annualTurnover") == "turnover"


def test_a_record_is_read_only_when_its_cells_line_up_with_the_header() -> None:
    header = [column for column in ROW if column != "note"]
    cells = [ROW[column] for column in header]
    assert draft_from_record(header, cells) == draft_from_cells(ROW)
    at = header.index("turnover")
    shifted = [*cells[:at], "2", "600", "000", "000", *cells[at + 1 :]]
    for record in (shifted, cells[:-2]):
        draft, errors = draft_from_record(header, record)
        assert draft is None
        assert [(error.field, error.reason.split(":")[0]) for error in errors] == [
            (WHOLE_ROW, f"has {len(record)} cells where the header has {len(header)} columns")
        ]


STORED = {
    "district": None,
    "established_on": None,
    "capital": 900_000_000,
    "annual_turnover": 20_000_000_000,
    "turnover_year": 2025,
    "employees": 3,
    "scale": "medium",
    "declared_scale": "micro",
}


@pytest.mark.parametrize(
    ("header", "declared"),
    [
        (
            ["nib", "name", "kbli", "region"],
            Scale.MICRO,
        ),  # no figures given: the declaration stands
        (["nib", "name", "kbli", "region", "turnover"], None),  # new figures drop it
        (["nib", "name", "kbli", "region", "scale"], None),  # an empty cell clears it
    ],
)
def test_a_file_without_a_scale_column_keeps_the_declaration_as_an_update_does(
    header: list[str], declared: Scale | None
) -> None:
    cells = {"nib": "7797000000201", "name": "Toko", "kbli": "47112", "region": "62.71"}
    draft, unread = draft_from_cells({**cells, "turnover": "300000000", "scale": ""})
    assert unread == []
    assert as_stored(draft, STORED, absent_fields(header)).scale is declared
