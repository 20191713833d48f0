"""The identifiers agencies exchange: NIB, SKU, NIK, Kemendagri region codes, KBLI, cooperative
legal-entity numbers and rupiah amounts (docs/domain.md, Identifiers).

Validators return the normalised value or raise InvalidValue naming the caller's input, so every
entry point (GraphQL, CLI, seed loader) rejects the same values with the same words. Reasons never
quote a NIK: it is personal data and error messages end up in logs.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from domain.errors import InvalidValue
from domain.text import INVISIBLE, printable

# [0-9] rather than \d: \d also matches Arabic-Indic and other Unicode digits.
_NIB = re.compile(r"[0-9]{13}")
_NIK = re.compile(r"[0-9]{16}")
_KBLI = re.compile(r"[0-9]{5}")
_DIVISION = re.compile(r"[0-9]{2}")
_SECTION_LETTER = re.compile(r"[A-Z]")
_REGION = re.compile(r"[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{2}(?:\.[0-9]{4})?)?)?")
_AHU = re.compile(r"AHU-(?P<serial>[0-9]+)\.AH\.01\.26\.TAHUN (?P<year>[0-9]{4})")
_ANY_DIGIT = re.compile(r"[0-9]")
_RECORD_ID = re.compile(r"[0-9]{1,19}")
_PRINTABLE_ASCII = re.compile(r"[!-~]+(?: [!-~]+)*")
"""Words of printable ASCII, one space between them: an SKU number, an older legal-entity number."""
_VILLAGE_KINDS = "123"
"""The first digit of a village code's DDDD: 1 kelurahan, 2 desa, 3 desa adat."""
_RECORD_ID_MAX = 2**63 - 1  # PostgreSQL's bigint, the type of every record key

_NATIONAL = "ID"
_KABUPATEN = range(1, 70)
_KOTA = range(71, 100)
_BIRTH_DAYS = (range(1, 32), range(41, 72))
_MONTHS = range(1, 13)
_LEGAL_ENTITY_NO_MAX = 100
_AHU_SERIAL_DIGITS = 7
"""The width of a Kemenkumham serial as the register prints it (`AHU-0000032`); shorter
spellings (a letterhead's `AHU-000032`) are padded to it, longer serials kept whole."""
_KALIMANTAN_UTARA = {"64.04", "64.05", "64.06", "64.10", "64.73"}
"""UU 20/2012 (in force 16 November 2012): Kalimantan Timur's Bulungan, Malinau, Nunukan, Tana
Tidung and Tarakan, now Kalimantan Utara's 65.01-65.04 and 65.71."""
_PAPUA_SELATAN = {"91.01", "91.16", "91.17", "91.18"}
"""UU 14/2022 (25 July 2022): Papua's Merauke, Boven Digoel, Mappi and Asmat, now 93.01-93.04."""
_PAPUA_TENGAH = {"91.04", "91.07", "91.08", "91.09", "91.25", "91.26", "91.27", "91.28"}
"""UU 15/2022 (25 July 2022): Papua's Nabire, Puncak Jaya, Paniai, Mimika, Puncak, Dogiyai,
Intan Jaya and Deiyai, now 94.01-94.08."""
_PAPUA_PEGUNUNGAN = {"91.02", "91.12", "91.13", "91.14", "91.21", "91.22", "91.23", "91.24"}
"""UU 16/2022 (25 July 2022): Papua's Jayawijaya, Pegunungan Bintang, Yahukimo, Tolikara,
Mamberamo Tengah, Yalimo, Lanny Jaya and Nduga, now 95.01-95.08."""
_PAPUA_BARAT_DAYA = {"92.01", "92.04", "92.05", "92.09", "92.10", "92.71"}
"""UU 29/2022 (8 December 2022): Papua Barat's Sorong, Sorong Selatan, Raja Ampat, Tambrauw,
Maybrat and Kota Sorong, now 96.01-96.05 and 96.71."""
RETIRED_REGENCY_CODES = frozenset(
    _KALIMANTAN_UTARA | _PAPUA_SELATAN | _PAPUA_TENGAH | _PAPUA_PEGUNUNGAN | _PAPUA_BARAT_DAYA
)
"""Regency codes a province's split has retired, which today's list (Kepmendagri
300.2.2-2138/2025) no longer holds: the new province numbers the same regencies afresh. A NIK
keeps the regency it was first issued in, so an owner from Tarakan may carry 64.73, one from
Merauke 91.01, for life. Papua's Waropen (91.15) and the regencies Papua and Papua Barat kept
are still today's codes, so they are not listed."""
KEMENKUMHAM_FIRST_YEAR = 2019
"""The year Kemenkumham began approving cooperatives electronically (Permenkumham 14/2019,
Pengesahan Koperasi), the first year an `AHU-….AH.01.26.TAHUN <year>` number can carry. A number
is issued to a cooperative already established, so a year after today's is none issued yet."""
RUPIAH_MAX = 10**15
"""Rp1 quadrillion: more than any amount a business or a loan reaches, so a larger one is a
unit slip (cents)."""


def validate_record_id(value: str, *, field: str = "id") -> int:
    """A record id as the API returns it: ASCII digits within a bigint. Python's int() also
    reads "１" (fullwidth) as 1, and a number past bigint would fail in the database instead."""
    if not _RECORD_ID.fullmatch(value) or int(value) > _RECORD_ID_MAX:
        raise InvalidValue(field, "must be a record id (digits) as returned by the API")
    return int(value)


def validate_nib(value: str, *, field: str = "nib") -> str:
    """OSS issues the NIB as a random 13-digit number, so it is checked for shape only."""
    nib = value.strip()
    if not _NIB.fullmatch(nib):
        raise InvalidValue(field, "must be exactly 13 digits")
    return nib


SKU_NUMBER_MAX = 80
"""The longest Surat Keterangan Usaha number kept: a village letter number
(`503/045/SKU/DS-SBR/VI/2024`) is some thirty characters."""


def validate_sku_number(value: str, *, field: str = "skuNumber") -> str:
    """A Surat Keterangan Usaha number in its one spelling: trimmed, runs of spaces collapsed to
    one, letters upper-case. Each desa/kelurahan numbers its letters its own way, so only the
    spelling is fixed, never a format; the number is unique per issuing village
    (`sku_issuer`, `sku_number`), and a second spelling of a registered one must be the same
    number. Printable ASCII only: a village letter number has no other characters, and PostgreSQL
    could case another letter otherwise than Python (migration 0043 holds stored numbers to this
    spelling)."""
    number = " ".join(value.split())
    if not number:
        raise InvalidValue(field, "must not be empty")
    if len(number) > SKU_NUMBER_MAX:
        raise InvalidValue(field, f"must be at most {SKU_NUMBER_MAX} characters")
    if not _PRINTABLE_ASCII.fullmatch(number):
        raise InvalidValue(field, "must be letters, digits, spaces and ASCII punctuation only")
    return number.upper()


def validate_sku_issuer(value: str, *, field: str = "skuIssuer") -> str:
    """The desa/kelurahan that issued a Surat Keterangan Usaha, by its Kemendagri code
    (`PP.KK.CC.DDDD`). The shape only: the region table stops at kecamatan, so whether the
    village exists is not known here; its kecamatan is the caller's lookup."""
    code = validate_region_code(value, field=field)
    if code == _NATIONAL or region_level(code, field=field) is not RegionLevel.VILLAGE:
        raise InvalidValue(field, "must be a desa/kelurahan code shaped PP.KK.CC.DDDD")
    if code[9] not in _VILLAGE_KINDS:
        raise InvalidValue(field, "the village digits must start 1 (kelurahan), 2 or 3 (desa)")
    return code


def issued_within(issuer: str, regency: str, district: str | None) -> bool:
    """Whether an SKU's issuing desa/kelurahan lies where a business is: in its kecamatan when
    it has one, else in its regency (an SKU is issued where the business is)."""
    return issuer.startswith((district or regency) + ".")


def sku_key(issuer: str, number: str) -> str:
    """An SKU as one text, as an eligibility decision keeps the key a business was asked by
    (`subject_key`): the issuing village's code, a space, the number. A NIB has no space, so
    the two never read as each other (`parse_sku_key`)."""
    return f"{issuer} {number}"


def parse_sku_key(key: str) -> tuple[str, str] | None:
    """(issuer, number) of an `sku_key`; None for a NIB."""
    issuer, space, number = key.partition(" ")
    return (issuer, number) if space else None


def validate_nik(value: str, *, known_regencies: Container[str], field: str = "nik") -> str:
    """Checks only what Dukcapil fixes in the format; the kecamatan digits are left alone.

    The regency prefix is where the NIK was first issued: one of today's codes, which the caller
    supplies from its regions, or one a split has since retired (`RETIRED_REGENCY_CODES`).
    """
    nik = value.strip()
    if not _NIK.fullmatch(nik):
        raise InvalidValue(field, "must be exactly 16 digits")
    regency = f"{nik[0:2]}.{nik[2:4]}"
    if regency not in known_regencies and regency not in RETIRED_REGENCY_CODES:
        raise InvalidValue(field, "digits 1-4 are not a known regency code")
    if not any(int(nik[6:8]) in days for days in _BIRTH_DAYS):
        raise InvalidValue(field, "digits 7-8 must be a birth day 01-31, or 41-71 for women")
    if int(nik[8:10]) not in _MONTHS:
        raise InvalidValue(field, "digits 9-10 must be a birth month 01-12")
    if nik[12:16] == "0000":
        raise InvalidValue(field, "digits 13-16 are a sequence number from 0001")
    return nik


class RegionLevel(StrEnum):
    NATIONAL = "national"
    PROVINCE = "province"
    REGENCY = "regency"
    CITY = "city"
    DISTRICT = "district"
    VILLAGE = "village"


def validate_region_code(value: str, *, field: str = "region") -> str:
    """Checks the shape only: whether the region exists is a lookup in the caller's data."""
    code = value.strip()
    _segments(code, field)
    return code


def _segments(code: str, field: str) -> list[str]:
    """The helpers below take stored codes; checking them keeps a corrupt code from widening access.

    The regency digits must be a kabupaten (01-69) or kota (71-99) number, because the level of a
    regency code is read from them. The nation has no segments.
    """
    if code == _NATIONAL:
        return []
    if not _REGION.fullmatch(code):
        meant = dotted_region_code(code)  # a spreadsheet's 6271 for 62.71
        hint = "" if meant is None else f"; did you mean {meant}?"
        raise InvalidValue(
            field, f'must be "ID" or a code shaped PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD{hint}'
        )
    segments = code.split(".")
    if len(segments) > 1 and int(segments[1]) not in _KABUPATEN and int(segments[1]) not in _KOTA:
        raise InvalidValue(field, "regency digits must be 01-69 (kabupaten) or 71-99 (kota)")
    return segments


_LEVEL_BY_DEPTH = {
    0: RegionLevel.NATIONAL,
    1: RegionLevel.PROVINCE,
    3: RegionLevel.DISTRICT,
    4: RegionLevel.VILLAGE,
}


_UNDOTTED_REGION = re.compile(r"([0-9]{2})([0-9]{2})(?:([0-9]{2})([0-9]{4})?)?")


def dotted_region_code(value: str) -> str | None:
    """The region code `value` spells without its dots ("6202" for 62.02, as a spreadsheet or
    a NIK writes it), to suggest; None when it is not digits of a code's length."""
    undotted = _UNDOTTED_REGION.fullmatch(value.strip())
    return None if undotted is None else ".".join(part for part in undotted.groups() if part)


def region_level(code: str, *, field: str = "region") -> RegionLevel:
    """Kemendagri encodes the level in the code itself, so no lookup is needed."""
    segments = _segments(code, field)
    if len(segments) == 2:
        return RegionLevel.REGENCY if int(segments[1]) in _KABUPATEN else RegionLevel.CITY
    return _LEVEL_BY_DEPTH[len(segments)]


def province_of(code: str, *, field: str = "region") -> str:
    """The province is what provincial agencies are scoped by; the nation has none."""
    segments = _segments(code, field)
    if not segments:
        raise InvalidValue(field, 'the national code "ID" has no province')
    return segments[0]


def is_region_code(code: str) -> bool:
    """Whether `code` is shaped as a region code, as given (validate_region_code's shape, not
    stripped), for callers that look a code up only when it could name a region: any other
    names none, and may hold what no lookup can carry (a NUL, a lone surrogate). Whether the
    region exists is the lookup's answer."""
    try:
        _segments(code, "code")
    except InvalidValue:
        return False
    return True


def is_province_code(code: str) -> bool:
    """Whether `code` is a province's code, for callers that refuse anything else in their own
    words (a ruleset's guarantor province, an eligibility check's province)."""
    try:
        return region_level(code) is RegionLevel.PROVINCE
    except InvalidValue:
        return False


def regency_of(code: str, *, field: str = "region") -> str | None:
    """None above regency level: a province or the nation does not belong to one regency."""
    segments = _segments(code, field)
    return ".".join(segments[:2]) if len(segments) >= 2 else None


def is_within(code: str, jurisdiction: str) -> bool:
    """The access-control rule: a region is inside a jurisdiction when it is the jurisdiction or
    lies below it in the code hierarchy.

    Both codes are checked first, so a malformed one ("", "6", "62.7") raises instead of matching
    as a bare string prefix; the "." then keeps the comparison on segment boundaries.
    """
    _segments(code, "code")
    _segments(jurisdiction, "jurisdiction")
    return jurisdiction == _NATIONAL or code == jurisdiction or code.startswith(jurisdiction + ".")


def validate_kbli_code(value: str, *, field: str = "kbli") -> str:
    """OSS registers businesses at the five-digit kelompok level of KBLI 2020."""
    code = value.strip()
    if not _KBLI.fullmatch(code):
        raise InvalidValue(field, "must be a five-digit KBLI 2020 code")
    return code


@dataclass(frozen=True, slots=True)
class KbliSection:
    """A KBLI category: its letter and the contiguous run of two-digit divisions it holds."""

    section: str
    title: str
    first_division: int
    last_division: int

    def holds(self, division: int) -> bool:
        return self.first_division <= division <= self.last_division


def parse_kbli_sections(rows: Iterable[Mapping[str, str]]) -> list[KbliSection]:
    """Sections are loaded from the BPS table because KBLI 2025 moves them; nothing is retyped."""
    return [_kbli_section_from(row) for row in rows]


def _kbli_section_from(row: Mapping[str, str]) -> KbliSection:
    letter = row["section"].strip()
    if not _SECTION_LETTER.fullmatch(letter):
        raise InvalidValue("section", "must be one capital letter")
    first = _division(row, "first_division")
    last = _division(row, "last_division")
    if first > last:
        raise InvalidValue("last_division", "must not be below first_division")
    return KbliSection(letter, row["title"].strip(), first, last)


def _division(row: Mapping[str, str], column: str) -> int:
    raw = row[column].strip()
    if not _DIVISION.fullmatch(raw):
        raise InvalidValue(column, "must be a two-digit KBLI division")
    return int(raw)


def kbli_section(code: str, sections: Iterable[KbliSection], *, field: str = "kbli") -> str:
    """The section is derived from the code, never accepted separately, so the two cannot disagree.

    Divisions between sections (04, 34, 40, ...) do not exist in KBLI 2020 and are rejected.
    """
    division = int(validate_kbli_code(code, field=field)[:2])
    for section in sections:
        if section.holds(division):
            return section.section
    raise InvalidValue(field, f"division {division:02d} of {code!r} is in no KBLI 2020 section")


def validate_legal_entity_no(value: str, *, today: date, field: str = "legalEntityNo") -> str:
    """A number to be stored, in the spelling it is stored in (`legal_entity_no_key`); an older
    one printable ASCII only, as it is printed. Older numbers are unique in any case (migration
    0048), and a look-alike from another script (a Greek capital Iota for the I of `XIV`) is
    another string that no case folding joins to the number, so it registered the cooperative
    twice. Numbers stored before this rule keep their spelling: an update that leaves a number
    as it is does not judge it again (domain/cooperative_records.py `check_cooperative`), and a
    lookup takes it (`legal_entity_no_key`).
    """
    number = legal_entity_no_key(value, field=field)
    if not number.startswith("AHU") and not _PRINTABLE_ASCII.fullmatch(number):
        raise InvalidValue(field, "must be letters, digits, spaces and ASCII punctuation only")
    year = _kemenkumham_year(number)
    if year is not None and not KEMENKUMHAM_FIRST_YEAR <= year <= today.year:
        raise InvalidValue(
            field,
            f"a Kemenkumham number's year must be {KEMENKUMHAM_FIRST_YEAR} to {today.year}"
            " (issued electronically since Permenkumham 14/2019, and not in the future)",
        )
    return number


def _kemenkumham_year(number: str) -> int | None:
    found = _AHU.fullmatch(number.strip().upper())
    return int(found["year"]) if found is not None else None


def legal_entity_no_key(value: str, *, field: str = "legalEntityNo") -> str:
    """The spelling a number is stored and looked up in. Kemenkumham numbers (since 2019) must
    follow their pattern and come back in their one canonical spelling (see
    `_kemenkumham_number`); older dinas numbers follow no common scheme, so they only have to be
    plausible text that contains a digit, and keep their spelling.

    Runs of spaces (including no-break spaces from pasted documents) collapse to one so the same
    number always compares equal; tabs, newlines and other control characters inside are refused.
    Every write and every lookup by number goes through here. A Kemenkumham number is stored and
    found in its one spelling; an older one keeps the caller's, and the register compares it in
    any case, its unique index and a lookup alike (db/queries/cooperatives.py
    `legal_entity_no_is`), so a lookup finds the cooperative that registering it is refused for.
    """
    number = value.strip()
    if not printable(number):
        raise InvalidValue(field, INVISIBLE)
    number = " ".join(number.split())
    if not number:
        raise InvalidValue(field, "must not be empty")
    if len(number) > _LEGAL_ENTITY_NO_MAX:
        raise InvalidValue(field, f"must be at most {_LEGAL_ENTITY_NO_MAX} characters")
    if number.upper().startswith("AHU"):
        return _kemenkumham_number(number, field)
    if not _ANY_DIGIT.search(number):
        raise InvalidValue(field, "must contain at least one digit")
    return number


def _kemenkumham_number(number: str, field: str) -> str:
    """An "AHU" prefix claims the electronic format; letting a malformed one pass as a legacy
    number would store two spellings of the same entity.

    The canonical spelling is upper-case with the serial as a number: its leading zeros dropped,
    then padded to `_AHU_SERIAL_DIGITS`. Sources disagree on the padding (the register and most
    documents print seven digits, `AHU-0000032`; a cooperative's own letterhead prints
    `AHU-000032`), while the serial is the same number, so the count of zeros cannot tell two
    cooperatives apart. Seven is the width the register prints; a longer serial, should the
    register grow past it, keeps all its significant digits. Migration 0034 holds the stored
    numbers to this spelling (a CHECK constraint), so the column's UNIQUE constraint is
    uniqueness of the number itself.
    """
    found = _AHU.fullmatch(number.upper())
    if found is None:
        raise InvalidValue(
            field, 'a Kemenkumham number must read "AHU-<digits>.AH.01.26.TAHUN <year>"'
        )
    serial = found["serial"].lstrip("0").rjust(_AHU_SERIAL_DIGITS, "0")
    return f"AHU-{serial}.AH.01.26.TAHUN {found['year']}"


def established_by(legal_entity_no: str, *, today: date) -> date | None:
    """The latest day a cooperative can have been established: the last day of the year its
    Kemenkumham legal-entity number was issued in (the deed comes before the number). None for
    an older dinas number, which carries no year one can rely on, and for a year no number can
    have been issued in yet (after `today`'s) or that is no calendar year (0000): a number stored
    before `validate_legal_entity_no` bounded the year tells nothing of the deed, and reading
    it would decide a rule (R03) on it or fail. A year before KEMENKUMHAM_FIRST_YEAR, as a
    number stored earlier may carry, is still read: it bounds the deed as any year does."""
    year = _kemenkumham_year(legal_entity_no)
    if year is None or not 1 <= year <= today.year:
        return None
    return date(year, 12, 31)


def validate_rupiah(value: int, *, field: str) -> int:
    """Amounts are whole rupiah; the ceiling (Rp1 quadrillion) catches unit slips such as cents,
    and bool is refused because True would otherwise pass as Rp1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, "must be a whole number of rupiah")
    if not 0 <= value <= RUPIAH_MAX:
        raise InvalidValue(field, f"must be between 0 and {RUPIAH_MAX:,} rupiah")
    return value
