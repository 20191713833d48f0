"""Identifier rules, checked against the real reference data where the repo ships it."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.identifiers import (
    KbliSection,
    RegionLevel,
    established_by,
    is_region_code,
    is_within,
    kbli_section,
    legal_entity_no_key,
    parse_kbli_sections,
    parse_sku_key,
    province_of,
    regency_of,
    region_level,
    sku_key,
    validate_kbli_code,
    validate_legal_entity_no,
    validate_nib,
    validate_nik,
    validate_record_id,
    validate_region_code,
    validate_rupiah,
    validate_sku_issuer,
    validate_sku_number,
)

# The packaged reference data (sinergi/seed_data).
SEED_DATA = Path(__file__).resolve().parents[2] / "sinergi" / "seed_data"


def _rows(name: str) -> list[dict[str, str]]:
    with (SEED_DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


REGIONS = _rows("regions.csv")
REGENCY_CODES = frozenset(row["code"] for row in REGIONS if row["level"] in {"regency", "city"})
SECTIONS = parse_kbli_sections(_rows("kbli-sections.csv"))
TODAY = date(2026, 12, 6)


# --- NIB ---------------------------------------------------------------------------------------


def test_a_thirteen_digit_nib_is_accepted_without_surrounding_whitespace() -> None:
    assert validate_nib("  1904230058291\n") == "1904230058291"


@pytest.mark.parametrize(
    "value",
    ["190423005829", "19042300582910", "19042300582a1", "1904 230058291", "", "١٩٠٤٢٣٠٠٥٨٢٩١"],
)
def test_a_nib_that_is_not_thirteen_ascii_digits_is_rejected(value: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_nib(value, field="input.nib")
    assert caught.value.field == "input.nib"


@pytest.mark.parametrize("value", ["１", "4２", "99999999999999999999", "9223372036854775808", ""])
def test_a_record_id_is_ascii_digits_within_a_bigint(value: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_record_id(value, field="input.msmeId")
    assert caught.value.field == "input.msmeId"


def test_the_largest_bigint_is_a_record_id() -> None:
    assert validate_record_id("9223372036854775807") == 2**63 - 1


def test_a_bad_nib_is_reported_against_nib_by_default() -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_nib("123")
    assert caught.value.field == "nib"


# --- NIK ---------------------------------------------------------------------------------------

KNOWN = frozenset({"36.02", "62.01", "62.71", "64.72"})


def test_the_dukcapil_example_nik_is_accepted() -> None:
    assert validate_nik("3602041211870001", known_regencies=KNOWN) == "3602041211870001"


def test_a_female_birth_day_of_52_is_accepted() -> None:
    assert validate_nik("6271995204880001", known_regencies=KNOWN) == "6271995204880001"


@pytest.mark.parametrize("day", ["01", "31", "41", "71"])
def test_birth_days_at_the_edges_of_both_ranges_are_accepted(day: str) -> None:
    nik = f"627199{day}04880001"
    assert validate_nik(nik, known_regencies=KNOWN) == nik


def test_the_kecamatan_digits_are_not_checked() -> None:
    assert validate_nik("6201990311790001", known_regencies=KNOWN) == "6201990311790001"


def test_every_demo_owner_nik_is_valid_against_the_regions_table() -> None:
    for row in _rows("demo-msmes.csv"):
        assert validate_nik(row["owner_nik"], known_regencies=REGENCY_CODES) == row["owner_nik"]


@pytest.mark.parametrize(
    "nik",
    [
        "627199520488000",  # 15 digits
        "62719952048800011",  # 17 digits
        "627199520488000x",
        "6299995204880001",  # regency 62.99 is not in the set
        "6271993204880001",  # day 32
        "6271990004880001",  # day 00
        "6271994004880001",  # day 40
        "6271997204880001",  # day 72
        "6271991213880001",  # month 13
        "6271991200880001",  # month 00
        "6271995204880000",  # sequence 0000: Dukcapil numbers from 0001
    ],
)
def test_a_bad_nik_is_rejected_without_echoing_its_digits(nik: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_nik(nik, known_regencies=KNOWN, field="input.owner.nik")
    assert caught.value.field == "input.owner.nik"
    assert nik not in str(caught.value)
    assert nik[:4] not in caught.value.reason
    assert nik[-4:] not in caught.value.reason


@pytest.mark.parametrize("regency", ["6404", "6405", "6406", "6410", "6473"])
def test_a_nik_first_issued_before_kalimantan_utara_was_formed_is_accepted(regency: str) -> None:
    """Tarakan, Bulungan, Malinau, Nunukan and Tana Tidung were Kalimantan Timur's (64.xx)
    until UU 20/2012; their people's NIKs keep those codes, which today's list has dropped."""
    nik = f"{regency}011203800001"
    assert validate_nik(nik, known_regencies=REGENCY_CODES) == nik


PAPUA_2022 = [
    *("9101", "9116", "9117", "9118"),  # to Papua Selatan, UU 14/2022
    *("9104", "9107", "9108", "9109", "9125", "9126", "9127", "9128"),  # Papua Tengah, 15/2022
    *("9102", "9112", "9113", "9114", "9121", "9122", "9123", "9124"),  # Papua Pegunungan, 16/2022
    *("9201", "9204", "9205", "9209", "9210", "9271"),  # to Papua Barat Daya, UU 29/2022
]


@pytest.mark.parametrize("regency", PAPUA_2022)
def test_a_nik_first_issued_before_papuas_2022_split_is_accepted(regency: str) -> None:
    """Merauke was Papua's 91.01 until Papua Selatan was formed (UU 14/2022), Sorong Papua
    Barat's 92.01 until Papua Barat Daya (UU 29/2022): their people's NIKs keep those codes."""
    assert f"{regency[:2]}.{regency[2:]}" not in REGENCY_CODES
    nik = f"{regency}011212900001"
    assert validate_nik(nik, known_regencies=REGENCY_CODES) == nik


def test_a_gap_in_todays_list_that_no_split_left_is_still_refused() -> None:
    assert "64.12" not in REGENCY_CODES
    with pytest.raises(InvalidValue, match="regency"):
        validate_nik("6412011203800001", known_regencies=REGENCY_CODES)


def test_an_unknown_regency_prefix_is_rejected() -> None:
    with pytest.raises(InvalidValue, match="regency"):
        validate_nik("6299995204880001", known_regencies=KNOWN)


# --- Region codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("ID", RegionLevel.NATIONAL),
        ("62", RegionLevel.PROVINCE),
        ("62.01", RegionLevel.REGENCY),
        ("62.69", RegionLevel.REGENCY),
        ("62.71", RegionLevel.CITY),
        ("62.99", RegionLevel.CITY),
        ("62.01.05", RegionLevel.DISTRICT),
        ("62.01.05.2001", RegionLevel.VILLAGE),
    ],
)
def test_the_level_is_read_from_the_code(code: str, level: RegionLevel) -> None:
    assert validate_region_code(code) == code
    assert region_level(code) is level


def test_a_region_code_is_stripped_of_surrounding_whitespace() -> None:
    assert validate_region_code(" 62.71 ") == "62.71"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "id",
        "6",
        "621",
        "62.",
        "62.1",
        "62.001",
        "62.01.5",
        "62.01.05.201",
        "62.01.05.2001.1",
        "62..01",
        "62-01",
        "62.00",  # neither kabupaten nor kota
        "62.70",
        "62.70.01",
        "６２",  # full-width digits
    ],
)
def test_a_malformed_region_code_is_rejected(code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_region_code(code, field="filter.region")
    assert caught.value.field == "filter.region"


@pytest.mark.parametrize(
    ("code", "shaped"),
    [
        ("ID", True),
        ("62.71", True),
        ("62.01.05.2001", True),
        ("62.70", False),
        ("6271", False),
        (" 62.71 ", False),  # as given: validate_region_code strips, a lookup does not
        ("62\x00", False),
        ("6\udcff", False),  # an argument's undecodable byte
    ],
)
def test_is_region_code_answers_for_the_shape_as_given(code: str, shaped: bool) -> None:
    assert is_region_code(code) is shaped


def test_every_region_in_the_decree_table_validates_at_its_own_level() -> None:
    for row in REGIONS:
        assert region_level(validate_region_code(row["code"])) == row["level"]


def test_every_district_in_the_decree_table_lies_within_its_regency() -> None:
    for row in _rows("districts.csv"):
        assert region_level(row["code"]) is RegionLevel.DISTRICT
        assert regency_of(row["code"]) == row["parent_code"]
        assert is_within(row["code"], row["parent_code"])


@pytest.mark.parametrize(
    ("code", "province", "regency"),
    [
        ("62", "62", None),
        ("62.71", "62", "62.71"),
        ("62.01.05", "62", "62.01"),
        ("62.01.05.2001", "62", "62.01"),
    ],
)
def test_province_and_regency_are_the_leading_segments(
    code: str, province: str, regency: str | None
) -> None:
    assert province_of(code) == province
    assert regency_of(code) == regency


def test_the_nation_has_no_regency() -> None:
    assert regency_of("ID") is None


def test_the_nation_has_no_province() -> None:
    with pytest.raises(InvalidValue) as caught:
        province_of("ID", field="jurisdiction")
    assert caught.value.field == "jurisdiction"


@pytest.mark.parametrize(
    ("code", "jurisdiction"),
    [
        ("62", "ID"),
        ("62.01.05.2001", "ID"),
        ("ID", "ID"),
        ("62", "62"),
        ("62.01", "62"),
        ("62.71", "62"),
        ("62.01.05", "62"),
        ("62.01.05.2001", "62"),
        ("62.71", "62.71"),
        ("62.71.03", "62.71"),
        ("62.71.03.1001", "62.71"),
        ("62.71.03", "62.71.03"),
        ("62.71.03.1001", "62.71.03"),
        ("62.71.03.1001", "62.71.03.1001"),
    ],
)
def test_a_region_is_within_itself_and_every_ancestor(code: str, jurisdiction: str) -> None:
    assert is_within(code, jurisdiction)


@pytest.mark.parametrize(
    ("code", "jurisdiction"),
    [
        ("ID", "62"),  # the nation is not inside a province
        ("62", "62.71"),  # a province is not inside one of its cities
        ("62.71", "62.71.03"),
        ("62.71.03", "62.71.03.1001"),
        ("61.71", "62"),  # a sibling province
        ("26.71", "62"),  # same digits, other order
        ("62.01", "62.02"),  # a sibling regency
        ("62.01.05", "62.02"),
        ("62.71.03", "62.71.04"),  # a sibling district
        ("62.11", "62.01"),  # shares "62." and the second regency digit
        ("62.10", "62.01"),
        ("62.71.30", "62.71.03"),
        ("62.01.05.2001", "62.01.50"),
        ("62.01.05.2001", "62.01.05.2002"),
    ],
)
def test_a_region_outside_the_jurisdiction_is_not_within_it(code: str, jurisdiction: str) -> None:
    assert not is_within(code, jurisdiction)


@pytest.mark.parametrize(
    ("code", "jurisdiction", "bad_field"),
    [
        ("62.01", "6", "jurisdiction"),  # a bare string prefix is not a province
        ("621", "62", "code"),  # would start with "62" but is not a code
        ("62.71", "62.7", "jurisdiction"),  # a prefix that stops inside a segment
        ("62.10", "62.1", "jurisdiction"),
        ("62.01.05", "62.01.0", "jurisdiction"),
        ("62.01", "", "jurisdiction"),  # an empty jurisdiction must never mean "everything"
        ("", "", "code"),
        ("62.01", "62.", "jurisdiction"),
        ("62.01", "id", "jurisdiction"),
        ("garbage", "ID", "code"),  # the national jurisdiction does not wave through junk
    ],
)
def test_a_near_miss_code_raises_instead_of_matching(
    code: str, jurisdiction: str, bad_field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        is_within(code, jurisdiction)
    assert caught.value.field == bad_field


_REGENCY_DIGITS = st.one_of(st.integers(1, 69), st.integers(71, 99)).map("{:02d}".format)
VALID_REGION_CODES = st.builds(
    lambda province, regency, district, village, depth: ".".join(
        [province, regency, district, village][:depth]
    ),
    st.integers(0, 99).map("{:02d}".format),
    _REGENCY_DIGITS,
    st.integers(0, 99).map("{:02d}".format),
    st.integers(0, 9999).map("{:04d}".format),
    st.integers(1, 4),
)


@given(VALID_REGION_CODES)
def test_every_valid_code_is_within_its_province_and_the_nation(code: str) -> None:
    assert validate_region_code(code) == code
    assert is_within(code, province_of(code))
    assert is_within(code, "ID")


@given(VALID_REGION_CODES, VALID_REGION_CODES)
def test_within_means_the_jurisdiction_is_the_code_or_one_of_its_ancestors(
    code: str, jurisdiction: str
) -> None:
    segments = code.split(".")
    ancestors = {".".join(segments[:depth]) for depth in range(1, len(segments) + 1)}
    assert is_within(code, jurisdiction) == (jurisdiction in ancestors)


# --- KBLI --------------------------------------------------------------------------------------


def test_the_sections_file_holds_the_21_sections_a_to_u() -> None:
    assert [section.section for section in SECTIONS] == list("ABCDEFGHIJKLMNOPQRSTU")
    assert SECTIONS[0] == KbliSection("A", "Pertanian, Kehutanan, dan Perikanan", 1, 3)


@pytest.mark.parametrize(
    ("code", "section"),
    [
        ("01262", "A"),
        ("03111", "A"),
        ("05100", "B"),
        ("10794", "C"),
        ("33200", "C"),
        ("35101", "D"),
        ("47112", "G"),
        ("56210", "I"),
        ("64141", "K"),
        ("99000", "U"),
    ],
)
def test_the_section_comes_from_the_division(code: str, section: str) -> None:
    assert kbli_section(code, SECTIONS) == section


def test_every_listed_kbli_code_has_a_section() -> None:
    for row in _rows("kbli-codes.csv"):
        assert kbli_section(validate_kbli_code(row["code"]), SECTIONS) in "ABCDEFGHIJKLMNOPQRSTU"


@pytest.mark.parametrize("code", ["04111", "00000", "34000", "40000", "44000", "57000", "89000"])
def test_a_division_that_belongs_to_no_section_is_rejected(code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        kbli_section(code, SECTIONS, field="input.kbli")
    assert caught.value.field == "input.kbli"
    assert code in caught.value.reason


def test_a_five_digit_kbli_code_is_accepted_without_surrounding_whitespace() -> None:
    assert validate_kbli_code(" 10794 ") == "10794"


@pytest.mark.parametrize("code", ["1079", "107940", "1079a", "10.79", "", "A"])
def test_a_kbli_code_that_is_not_five_digits_is_rejected(code: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_kbli_code(code)
    assert caught.value.field == "kbli"


def test_kbli_section_rejects_a_malformed_code() -> None:
    with pytest.raises(InvalidValue) as caught:
        kbli_section("1079", SECTIONS)
    assert caught.value.field == "kbli"


@pytest.mark.parametrize(
    ("row", "bad_column"),
    [
        ({"section": "AB", "title": "x", "first_division": "01", "last_division": "03"}, "section"),
        (
            {"section": "A", "title": "x", "first_division": "1", "last_division": "03"},
            "first_division",
        ),
        (
            {"section": "A", "title": "x", "first_division": "01", "last_division": ""},
            "last_division",
        ),
        (
            {"section": "A", "title": "x", "first_division": "05", "last_division": "03"},
            "last_division",
        ),
    ],
)
def test_a_malformed_sections_row_is_rejected(row: dict[str, str], bad_column: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_kbli_sections([row])
    assert caught.value.field == bad_column


# --- Cooperative legal-entity numbers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("AHU-9990001.AH.01.26.TAHUN 2019", "AHU-9990001.AH.01.26.TAHUN 2019"),
        ("  AHU-9990004.AH.01.26.TAHUN   2019 ", "AHU-9990004.AH.01.26.TAHUN 2019"),
        ("ahu-9990001.ah.01.26.tahun 2019", "AHU-9990001.AH.01.26.TAHUN 2019"),
        ("AHU-9990001.AH.01.26.TAHUN\u00a02019", "AHU-9990001.AH.01.26.TAHUN 2019"),
        ("518.08/96/BH/XIV.10/VIII/2008", "518.08/96/BH/XIV.10/VIII/2008"),
        ("No.  12 / BH / 1998", "No. 12 / BH / 1998"),
        ("1" * 100, "1" * 100),
    ],
)
def test_a_legal_entity_number_is_accepted_with_whitespace_collapsed(
    value: str, normalised: str
) -> None:
    assert validate_legal_entity_no(value, today=TODAY) == normalised


# One Kemenkumham number, however many leading zeros, cases and spaces a source spells it with.
SAME_NUMBER = "AHU-0000032.AH.01.26.TAHUN 2019"


@pytest.mark.parametrize(
    "value",
    [
        SAME_NUMBER,
        "AHU-000032.AH.01.26.TAHUN 2019",  # a cooperative's letterhead: six digits
        "AHU-32.AH.01.26.TAHUN 2019",
        "AHU-000000032.AH.01.26.TAHUN 2019",
        "ahu-00032.ah.01.26.Tahun  2019",
        " AHU-0000032.AH.01.26.TAHUN\u00a02019 ",
    ],
)
def test_every_spelling_of_a_kemenkumham_number_has_one_canonical_form(value: str) -> None:
    assert validate_legal_entity_no(value, today=TODAY) == SAME_NUMBER


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        # A serial of more than seven significant digits keeps them all.
        ("AHU-12345678.AH.01.26.TAHUN 2024", "AHU-12345678.AH.01.26.TAHUN 2024"),
        ("AHU-0012345678.AH.01.26.TAHUN 2024", "AHU-12345678.AH.01.26.TAHUN 2024"),
        ("AHU-0.AH.01.26.TAHUN 2019", "AHU-0000000.AH.01.26.TAHUN 2019"),
        # The year is part of the number: the same serial in another year is another number.
        ("AHU-000032.AH.01.26.TAHUN 2020", "AHU-0000032.AH.01.26.TAHUN 2020"),
        # A dinas number's zeros are not a serial's padding: it keeps its spelling.
        ("518.08/096/BH/XIV.10/VIII/2008", "518.08/096/BH/XIV.10/VIII/2008"),
    ],
)
def test_the_canonical_form_keeps_what_tells_numbers_apart(value: str, canonical: str) -> None:
    assert validate_legal_entity_no(value, today=TODAY) == canonical


def test_every_demo_cooperative_number_is_valid() -> None:
    for row in _rows("demo-cooperatives.csv"):
        assert (
            validate_legal_entity_no(row["legal_entity_no"], today=TODAY) == row["legal_entity_no"]
        )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "1" * 101,
        "BH/KOPERASI",  # no digit
        "518.08/96\t/BH",  # control characters inside
        "518.08/96\n/BH",
        "518.08\x00/96/BH",
        "518.08\u200b/96/BH",  # zero-width space
        "518/BH/X\u0399V/1999",  # an older number with a Greek capital Iota for the I
        "\uff15\uff11\uff18/BH/XIV/1999",  # fullwidth digits
        "518/BH\u2013XIV/1999",  # an en dash
        "AHU-9990001.AH.01.26.TAHUN 19",  # claims the Kemenkumham format but breaks it
        "AHU-9990001.AH.01.26.2019",
        "AHU-.AH.01.26.TAHUN 2019",
        "AHU 9990001",
    ],
)
def test_a_bad_legal_entity_number_is_rejected(value: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_legal_entity_no(value, field="input.legalEntityNo", today=TODAY)
    assert caught.value.field == "input.legalEntityNo"


@pytest.mark.parametrize("year", ["0000", "2018", "2027", "9999"])
def test_a_kemenkumham_number_from_before_2019_or_after_this_year_is_rejected(year: str) -> None:
    """Permenkumham 14/2019 began the electronic numbers, and one is issued to a cooperative
    already established: year 0000 or 9999, or next year's, is a typing slip, never a number."""
    with pytest.raises(InvalidValue) as caught:
        validate_legal_entity_no(f"AHU-7741000.AH.01.26.TAHUN {year}", field="input.x", today=TODAY)
    assert caught.value.field == "input.x"
    assert "2019 to 2026" in str(caught.value)


@pytest.mark.parametrize("year", ["2019", "2026"])
def test_a_kemenkumham_number_from_2019_to_this_year_is_accepted(year: str) -> None:
    number = f"AHU-7741000.AH.01.26.TAHUN {year}"
    assert validate_legal_entity_no(number, today=TODAY) == number


@pytest.mark.parametrize("year", ["0000", "2027", "9999"])
def test_a_stored_number_of_an_impossible_year_bounds_no_establishment(year: str) -> None:
    """A number stored before its year was bounded is read as no year at all, never raising:
    R03 then asks for review instead of failing, or deciding on a date yet to come."""
    assert established_by(f"AHU-7741000.AH.01.26.TAHUN {year}", today=TODAY) is None


def test_a_number_bounds_establishment_by_the_end_of_its_year() -> None:
    assert established_by("AHU-7741000.AH.01.26.TAHUN 2026", today=TODAY) == date(2026, 12, 31)
    assert established_by("AHU-7741000.AH.01.26.TAHUN 2015", today=TODAY) == date(2015, 12, 31)
    assert established_by("518.08/96/BH/XIV.10/VIII/2008", today=TODAY) is None


def test_a_bad_legal_entity_number_is_reported_against_legal_entity_no_by_default() -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_legal_entity_no("", today=TODAY)
    assert caught.value.field == "legalEntityNo"


@pytest.mark.parametrize(
    "value", ["518/BH\u2013XIV/1999", "518/BH/X\u0399V/1999", "\uff15\uff11\uff18/BH/XIV/1999"]
)
def test_a_number_stored_before_the_ascii_rule_is_a_key_to_look_it_up_by(value: str) -> None:
    """Only a number to be stored is held to ASCII: one stored before the rule is still found."""
    assert legal_entity_no_key(f"  {value} ") == value


# --- Rupiah ------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, 1, 222_000_000_000, 10**15])
def test_a_whole_rupiah_amount_within_range_is_accepted(amount: int) -> None:
    assert validate_rupiah(amount, field="capital") == amount


@pytest.mark.parametrize("amount", [-1, 10**15 + 1, True, False, 1.0, "100"])
def test_a_negative_oversized_or_non_integer_amount_is_rejected(amount: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_rupiah(amount, field="input.annualSales")  # type: ignore[arg-type]
    assert caught.value.field == "input.annualSales"


@pytest.mark.parametrize(
    ("given", "spelled"),
    [
        ("470/12/Kel.Pahandut/2024", "470/12/KEL.PAHANDUT/2024"),
        ("  503 / 045 /sku\u00a0 /2024 ", "503 / 045 /SKU /2024"),
        ("12", "12"),
    ],
)
def test_an_sku_number_has_one_spelling(given: str, spelled: str) -> None:
    assert validate_sku_number(given) == spelled
    assert validate_sku_number(spelled) == spelled


@pytest.mark.parametrize("value", ["", "   ", "470/12/Kel\u00e9", "470\x00/12", "1" * 81])
def test_an_sku_number_that_is_empty_long_or_not_ascii_is_rejected(value: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        validate_sku_number(value, field="input.skuNumber")
    assert refused.value.field == "input.skuNumber"


@pytest.mark.parametrize("value", ["62.71.01.1001", "62.01.05.2001", " 62.01.05.3001 "])
def test_an_sku_is_issued_by_a_kelurahan_a_desa_or_a_desa_adat(value: str) -> None:
    assert validate_sku_issuer(value) == value.strip()


@pytest.mark.parametrize(
    "value", ["ID", "62", "62.71", "62.71.01", "62.71.01.4001", "62.71.01.101"]
)
def test_an_sku_issuer_that_is_no_village_is_rejected(value: str) -> None:
    with pytest.raises(InvalidValue):
        validate_sku_issuer(value)


def test_an_sku_key_reads_back_and_is_never_a_nib() -> None:
    key = sku_key("62.71.01.1001", "503 / 045 /SKU")
    assert parse_sku_key(key) == ("62.71.01.1001", "503 / 045 /SKU")
    assert parse_sku_key("1904230058291") is None
