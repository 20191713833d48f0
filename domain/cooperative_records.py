"""The rules a written cooperative record must satisfy (see domain/records.py for MSMEs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypedDict

from domain.errors import InvalidValue
from domain.identifiers import (
    established_by,
    kbli_section,
    legal_entity_no_key,
    validate_legal_entity_no,
    validate_rupiah,
)
from domain.records import (
    Collector,
    Namer,
    Vocabulary,
    changes,
    validate_count,
    validate_name,
    validate_past_date,
    validate_place,
    validate_text,
    validate_year,
)
from domain.ruleset import KSP_HEALTH

TYPES = ("produsen", "konsumen", "simpan_pinjam", "pemasaran", "jasa")
TIERS = ("primary", "secondary")
SECONDARY = "secondary"
"""A cooperative formed by at least three cooperatives (UU 25/1992 Pasal 15): its members are
cooperatives, not persons, nor MSMEs (resolvers/msme_writes.py)."""
_SURPLUS_MAX = 10**15
SAVINGS_AND_LOAN_KBLI = ("64141", "64142", "64145")
"""KBLI 2020: a savings-and-loan cooperative (KSP, 64141), a cooperative's savings-and-loan unit
(USP, 64142) and a sharia one (KSPPS, 64145). A cooperative of another type with such a unit
lends its members' savings as a KSP does, and its health is rated as a KSP's is."""


def runs_savings_and_loan(kind: str, kbli_code: str | None) -> bool:
    """A KSP, or a cooperative whose business is savings and loans by its KBLI: the ones whose
    health rating R11 weighs."""
    return kind == "simpan_pinjam" or kbli_code in SAVINGS_AND_LOAN_KBLI


@dataclass(frozen=True, slots=True)
class CooperativeDraft:
    legal_entity_no: str
    name: str
    type: str
    region: str
    district: str | None = None
    tier: str = "primary"
    ods_no: str | None = None
    kbli_code: str | None = None
    members_male: int = 0
    members_female: int = 0
    business_volume: int = 0
    assets: int = 0
    surplus: int | None = None
    book_year: int | None = None
    established_on: date | None = None
    last_rat_date: date | None = None
    last_rat_book_year: int | None = None
    ksp_health: str | None = None
    ksp_health_book_year: int | None = None


class CooperativePatch(TypedDict, total=False):
    """The fields of a `CooperativeDraft` an update sets (`MsmePatch`'s rule); the legal-entity
    number, its natural key, is not among them."""

    name: str
    type: str
    region: str
    district: str | None
    tier: str
    ods_no: str | None
    kbli_code: str | None
    members_male: int
    members_female: int
    business_volume: int
    assets: int
    surplus: int | None
    book_year: int | None
    established_on: date | None
    last_rat_date: date | None
    last_rat_book_year: int | None
    ksp_health: str | None
    ksp_health_book_year: int | None


@dataclass(frozen=True, slots=True)
class CheckedCooperative:
    legal_entity_no: str
    name: str
    type: str
    tier: str
    province_code: str
    regency_code: str
    district_code: str | None
    ods_no: str | None
    kbli_code: str | None
    members_male: int
    members_female: int
    business_volume: int
    assets: int
    surplus: int | None
    book_year: int | None
    established_on: date | None
    last_rat_date: date | None
    last_rat_book_year: int | None
    ksp_health: str | None
    ksp_health_book_year: int | None


def validate_surplus(value: int, *, field: str) -> int:
    """SHU may be a loss, so unlike other amounts it may be negative."""
    if isinstance(value, bool) or not -_SURPLUS_MAX <= value <= _SURPLUS_MAX:
        raise InvalidValue(field, f"must be a whole number of rupiah within ±{_SURPLUS_MAX:,}")
    return value


def _established(value: date, number: str | None, *, field: str, today: date) -> date:
    """The deed's date: in the past, and not after the year the legal-entity number was
    issued in, since the number is given to an established cooperative."""
    validate_past_date(value, field=field, today=today)
    latest = established_by(number, today=today) if number is not None else None
    if latest is not None and value > latest:
        raise InvalidValue(field, f"is after the legal-entity number's year ({latest.year})")
    return value


def _rat_held(value: date, established: date | None, *, field: str, today: date) -> date:
    """The last RAT's date: in the past, and not before the deed, since a cooperative's members
    meet as its members only once it is established."""
    validate_past_date(value, field=field, today=today)
    if established is not None and value < established:
        raise InvalidValue(field, f"is before the cooperative was established ({established})")
    return value


def _rat_book_year(
    value: int, held_on: date | None, established: date | None, *, field: str, today: date
) -> int:
    """The book year the last RAT reviewed. A book year is a calendar year and the RAT reviews
    it once it has closed (R11 counts the RAT for year Y as due after 31 December of Y), so it
    is before the year the RAT was held in, and before this year whether or not that date is
    recorded; and it is not before the year the cooperative was established in."""
    validate_year(value, field=field, today=today)
    if held_on is not None and value >= held_on.year:
        raise InvalidValue(
            field,
            f"must be before {held_on.year}, the year of the last RAT: "
            "a RAT reviews a book year that has closed",
        )
    if value >= today.year:
        raise InvalidValue(
            field, f"must be before {today.year}: a RAT reviews a book year that has closed"
        )
    return _founded_by(value, established, field=field)


def _closed_book_year(
    value: int, established: date | None, *, field: str, today: date, why: str
) -> int:
    """A book year whose accounts have closed, as a RAT's: that of a health rating, or of the
    figures (`why` says which, in the message)."""
    validate_year(value, field=field, today=today)
    if value >= today.year:
        raise InvalidValue(field, f"must be before {today.year}: {why}")
    return _founded_by(value, established, field=field)


def _rated(
    draft: CooperativeDraft, kind: str | None, kbli_code: str | None, *, name: Namer
) -> list[InvalidValue]:
    """A rating is of one book year's accounts, so it comes with that year, and the year with
    it; and only a cooperative that runs savings and loans is rated (else R11 would weigh a
    rating that no rule asks of it)."""
    if (draft.ksp_health is None) != (draft.ksp_health_book_year is None):
        missing, given = (
            ("kspHealthBookYear", "kspHealth")
            if draft.ksp_health_book_year is None
            else ("kspHealth", "kspHealthBookYear")
        )
        return [InvalidValue(name(missing), f"is required with {given}")]
    if draft.ksp_health is None or kind is None:
        return []
    if not runs_savings_and_loan(kind, kbli_code):
        return [
            InvalidValue(
                name("kspHealth"),
                "only a cooperative that runs savings and loans (type SIMPAN_PINJAM, or KBLI "
                f"{', '.join(SAVINGS_AND_LOAN_KBLI)}) has a health rating",
            )
        ]
    return []


def _book_year(
    value: int, established: date | None, *, field: str, today: date, changed: bool
) -> int:
    """The year of the figures (business volume, assets, SHU): one the cooperative existed in,
    and closed, for they are its accounts, which the RAT approves once the year has closed (a
    year still running has none yet, and R11 and the indicators would read part of one). A
    year the write leaves as stored (not `changed`) was stored before it had to be closed."""
    if not changed:
        validate_year(value, field=field, today=today)
        return _founded_by(value, established, field=field)
    return _closed_book_year(
        value,
        established,
        field=field,
        today=today,
        why="the figures are the accounts of a book year that has closed",
    )


def _founded_by(year: int, established: date | None, *, field: str) -> int:
    if established is not None and year < established.year:
        raise InvalidValue(
            field, f"is before {established.year}, the year the cooperative was established"
        )
    return year


def _persons_in_secondary(draft: CooperativeDraft, *, name: Namer) -> list[InvalidValue]:
    """A secondary cooperative's members are cooperatives (UU 25/1992 Pasal 15): a count of
    persons in it would be counted among the members of the register's cooperatives."""
    counts = (("membersMale", draft.members_male), ("membersFemale", draft.members_female))
    return [
        InvalidValue(
            name(field),
            "must be 0: a secondary cooperative's members are cooperatives, not persons "
            "(UU 25/1992 Pasal 15)",
        )
        for field, count in counts
        if count != 0
    ]


def _one_of(value: str, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise InvalidValue(field, f"must be one of {', '.join(choices)}")
    return value


def _same_number(sent: str, stored: str) -> bool:
    """Whether `sent` is `stored` as a lookup by number compares them (db/queries/cooperatives.py
    `legal_entity_no_is`: the key, in lower case), so that upper or lower case, runs of spaces, or
    a serial's zeros make no other number."""
    if sent == stored:
        return True
    try:
        return legal_entity_no_key(sent).lower() == legal_entity_no_key(stored).lower()
    except InvalidValue:  # one of them is no number at all: not the same
        return False


def check_cooperative(
    draft: CooperativeDraft,
    vocabulary: Vocabulary,
    *,
    name: Namer = str,
    stored_number: str | None = None,
    kept: frozenset[str] = frozenset(),
) -> CheckedCooperative | list[InvalidValue]:
    """The values to store, or every broken rule, named as `check_registered_msme` names them.

    `stored_number` is the number of the record an update merges the draft over: a write that
    leaves it as stored keeps it unjudged (as domain/scale.py `kept_declaration` keeps a
    declaration), since a number stored before today's rule (an older one outside ASCII, a
    Kemenkumham one dated before 2019) is still the cooperative's, and refusing it would leave
    the record unwritable. "As stored" is as a lookup finds it (`_same_number`): the number sent
    back in another spelling is still the stored one, and keeps the stored spelling. `kept` are
    the fields it leaves as stored (domain/records.py `unchanged`): a name or ODS number so kept
    is not judged again, nor are the rules added since records were stored (a secondary
    cooperative's person counts, the figures' closed book year) applied to values it keeps.
    """
    today = vocabulary.today
    got = Collector()
    number = (
        stored_number
        if stored_number is not None and _same_number(draft.legal_entity_no, stored_number)
        else got.take(
            lambda: validate_legal_entity_no(
                draft.legal_entity_no, today=today, field=name("legalEntityNo")
            )
        )
    )
    title = (
        draft.name
        if not changes(kept, "name")
        else got.take(lambda: validate_name(draft.name, field=name("name")))
    )
    kind = got.take(lambda: _one_of(draft.type, TYPES, name("type")))
    tier = got.take(lambda: _one_of(draft.tier, TIERS, name("tier")))
    place = got.take(
        lambda: validate_place(
            draft.region,
            draft.district,
            region_field=name("region"),
            district_field=name("district"),
        )
    )
    ods_no = (
        draft.ods_no
        if not changes(kept, "ods_no")
        else got.optional(draft.ods_no, lambda value: validate_text(value, field=name("odsNo")))
    )

    def kbli(value: str) -> str:
        kbli_section(value.strip(), vocabulary.kbli_sections, field=name("kbliCode"))
        return value.strip()

    kbli_code = got.optional(draft.kbli_code, kbli)
    members_male = got.take(lambda: validate_count(draft.members_male, field=name("membersMale")))
    members_female = got.take(
        lambda: validate_count(draft.members_female, field=name("membersFemale"))
    )
    if tier == SECONDARY and changes(kept, "tier", "members_male", "members_female"):
        got.errors.extend(_persons_in_secondary(draft, name=name))
    volume = got.take(lambda: validate_rupiah(draft.business_volume, field=name("businessVolume")))
    assets = got.take(lambda: validate_rupiah(draft.assets, field=name("assets")))
    surplus = got.optional(
        draft.surplus, lambda value: validate_surplus(value, field=name("surplus"))
    )
    # The dates are checked against each other once each is valid on its own: a RAT or a book
    # year before the deed, or a RAT on a book year not yet closed, would decide R11 wrongly.
    established = got.optional(
        draft.established_on,
        lambda value: _established(value, number, field=name("establishedOn"), today=today),
    )
    book_year = got.optional(
        draft.book_year,
        lambda value: _book_year(
            value,
            established,
            field=name("bookYear"),
            today=today,
            changed=changes(kept, "book_year", "business_volume", "assets", "surplus"),
        ),
    )
    rat_date = got.optional(
        draft.last_rat_date,
        lambda value: _rat_held(value, established, field=name("lastRatDate"), today=today),
    )
    rat_year = got.optional(
        draft.last_rat_book_year,
        lambda value: _rat_book_year(
            value, rat_date, established, field=name("lastRatBookYear"), today=today
        ),
    )
    health = got.optional(
        draft.ksp_health, lambda value: _one_of(value, KSP_HEALTH, name("kspHealth"))
    )
    health_year = got.optional(
        draft.ksp_health_book_year,
        lambda value: _closed_book_year(
            value,
            established,
            field=name("kspHealthBookYear"),
            today=today,
            why="a rating assesses a book year that has closed",
        ),
    )
    got.errors.extend(_rated(draft, kind, kbli_code, name=name))
    if (
        got.errors
        or number is None
        or title is None
        or kind is None
        or tier is None
        or place is None
        or members_male is None
        or members_female is None
        or volume is None
        or assets is None
    ):
        return got.errors
    return CheckedCooperative(
        legal_entity_no=number,
        name=title,
        type=kind,
        tier=tier,
        province_code=place.province,
        regency_code=place.regency,
        district_code=place.district,
        ods_no=ods_no,
        kbli_code=kbli_code,
        members_male=members_male,
        members_female=members_female,
        business_volume=volume,
        assets=assets,
        surplus=surplus,
        book_year=book_year,
        established_on=established,
        last_rat_date=rat_date,
        last_rat_book_year=rat_year,
        ksp_health=health,
        ksp_health_book_year=health_year,
    )
