"""The rules a written MSME record must satisfy, whoever writes it: a mutation, a bulk import.

`check_registered_msme` turns a draft (typed values as a client or a CSV row gave them) into the
values to store, or into every rule the draft breaks, each naming its field, so one import row
reports all of its problems at once and a mutation and an import reject the same values with
the same words. Whether a region exists, or lies in the caller's jurisdiction, is a lookup the
caller makes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from domain.errors import InvalidValue
from domain.identifiers import (
    KbliSection,
    RegionLevel,
    issued_within,
    kbli_section,
    regency_of,
    region_level,
    validate_nib,
    validate_nik,
    validate_region_code,
    validate_rupiah,
    validate_sku_issuer,
    validate_sku_number,
)
from domain.scale import Scale, check_declared_scale, registered_scale
from domain.text import INVISIBLE, legible, printable

if TYPE_CHECKING:
    from domain.cooperative_records import CooperativeDraft

_TEXT_MAX = 200
NOTE_MAX = 1000
"""Free text that explains (a review's reason, a status note, where a figure comes from): a
paragraph. Every reader of the record gets it back, so one writer must not fill it with a book."""
_COUNT_MAX = 10_000_000
EARLIEST = date(1900, 1, 1)
"""The earliest date a record's founding, birth or book year may have (before it: a typing
slip)."""
_PHONE = re.compile(r"\+?[0-9]{6,15}")
_PHONE_SEPARATORS = re.compile(r"[ ().-]")

T = TypeVar("T")
Namer = Callable[[str], str]


def validate_text(value: str, *, field: str, max_length: int = _TEXT_MAX) -> str:
    """Names and addresses: runs of spaces collapse to one, control characters are refused."""
    if not printable(value.strip()):
        raise InvalidValue(field, INVISIBLE)
    text = " ".join(value.split())
    if not text:
        raise InvalidValue(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    return text


def validate_name(value: str, *, field: str) -> str:
    """A name (a business's, a cooperative's, an owner's): text, as `validate_text` takes it,
    that shows something: one of punctuation or combining marks alone names no one."""
    text = validate_text(value, field=field)
    if not legible(text):
        raise InvalidValue(field, "must hold a letter or a digit")
    return text


def validate_count(value: int, *, field: str) -> int:
    """Head counts (employees, members): whole and non-negative; bool is not a number here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, "must be a whole number")
    if not 0 <= value <= _COUNT_MAX:
        raise InvalidValue(field, f"must be between 0 and {_COUNT_MAX:,}")
    return value


def validate_year(value: int, *, field: str, today: date) -> int:
    if isinstance(value, bool) or not EARLIEST.year <= value <= today.year:
        raise InvalidValue(field, f"must be a year from {EARLIEST.year} to {today.year}")
    return value


def validate_past_date(value: date, *, field: str, today: date) -> date:
    """Founding and birth dates: not in the future, and not before 1900 (a typing slip)."""
    if not EARLIEST <= value <= today:
        raise InvalidValue(field, f"must be a date from {EARLIEST} to {today}")
    return value


def validate_sex(value: str, *, field: str) -> str:
    sex = value.strip().upper()
    if sex not in ("F", "M"):
        raise InvalidValue(field, 'must be "F" or "M"')
    return sex


def validate_phone(value: str, *, field: str) -> str:
    """Spaces, dots, dashes and brackets are dropped; what remains is digits, maybe a leading +."""
    phone = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE.fullmatch(phone):
        raise InvalidValue(field, "must be 6 to 15 digits, optionally after a +")
    return phone


@dataclass(frozen=True, slots=True)
class Place:
    province: str
    regency: str
    district: str | None


def validate_place(
    region: str, district: str | None, *, region_field: str, district_field: str
) -> Place:
    """A business is located in a regency or city, optionally in one of its kecamatan."""
    if len(region) + len(district or "") > _PLACE_KEPT_LENGTH:
        return _checked_place(region, district, region_field, district_field)
    place = _place(region, district, region_field, district_field)
    if isinstance(place, InvalidValue):
        raise InvalidValue(place.field, place.reason)
    return place


_PLACE_KEPT_LENGTH = 40
"""Longer input is checked each time, never kept: the cache stays small whatever is sent."""


@functools.lru_cache(maxsize=8192)
def _place(
    region: str, district: str | None, region_field: str, district_field: str
) -> Place | InvalidValue:
    """validate_place's answer, kept per argument: an import's rows name a few hundred places
    (Indonesia has ~7,300 kecamatan), each checked once instead of once a row."""
    try:
        return _checked_place(region, district, region_field, district_field)
    except InvalidValue as error:
        return error


def _checked_place(
    region: str, district: str | None, region_field: str, district_field: str
) -> Place:
    regency = validate_region_code(region, field=region_field)
    if regency == "ID" or region_level(regency) not in (RegionLevel.REGENCY, RegionLevel.CITY):
        raise InvalidValue(region_field, "must be a regency or city code shaped PP.KK")
    if district is None or not district.strip():
        return Place(regency[:2], regency, None)
    code = validate_region_code(district, field=district_field)
    if code == "ID" or region_level(code) is not RegionLevel.DISTRICT:
        raise InvalidValue(district_field, "must be a kecamatan code shaped PP.KK.CC")
    if regency_of(code) != regency:
        raise InvalidValue(district_field, f"is not a kecamatan of {regency}")
    return Place(regency[:2], regency, code)


def settle_scale(
    declared: Scale | None, *, capital: int | None, annual_sales: int | None, field: str
) -> Scale:
    """The scale to store (`registered_scale`): a declared one must fit one of the figures, and
    is what is stored only when there are none."""
    if declared is not None:
        check_declared_scale(declared, capital=capital, annual_sales=annual_sales, field=field)
    scale = registered_scale(declared, capital=capital, annual_sales=annual_sales)
    if scale is None:
        raise InvalidValue(field, "is required when neither capital nor turnover is given")
    return scale


def check_scale_report(
    *,
    annual_sales: int,
    capital: int | None,
    turnover_year: int,
    effective_from: date,
    today: date,
    name: Namer = str,
) -> list[InvalidValue]:
    """Every rule a report of new annual figures breaks (`reportScaleChange`), named as
    `check_registered_msme` names them.

    The scale takes effect on `effective_from`, reckoned from the sales of `turnover_year`, which
    is that year or an earlier one. The same year's sales may ground it: a business whose sales
    this year have already passed a threshold has outgrown its scale from the day they did. A
    later year's sales had not been made when the scale is said to have changed.
    """
    got = Collector()
    got.take(lambda: validate_rupiah(annual_sales, field=name("annualSales")))
    got.optional(capital, lambda value: validate_rupiah(value, field=name("capital")))
    year = got.take(lambda: validate_year(turnover_year, field=name("turnoverYear"), today=today))
    if effective_from > today:
        got.errors.append(InvalidValue(name("effectiveFrom"), "must not be in the future"))
    elif year is not None and year > effective_from.year:
        got.errors.append(
            InvalidValue(
                name("turnoverYear"),
                f"must not be after {effective_from.year}, the year of effectiveFrom: "
                "a scale cannot rest on sales not yet made when it took effect",
            )
        )
    return got.errors


def changes(kept: Container[str], *fields: str) -> bool:
    """Whether a write changes one of `fields` (draft field names), `kept` being the fields it
    leaves as stored (`unchanged`; a record created keeps none). A rule added after records
    were stored judges only what a write changes, so a record that older code accepted stays
    writable without a migration, as domain/scale.py `kept_declaration` keeps a declaration."""
    return any(field not in kept for field in fields)


def unchanged(given: Mapping[str, object], stored: Mapping[str, object]) -> frozenset[str]:
    """The fields (by draft field name, the owner's as `owner.<field>`: `draft_values`) a write
    gives as the stored record holds them: the merged record of an update, an import's row."""
    return frozenset(
        field for field, value in given.items() if field in stored and stored[field] == value
    )


def draft_values(draft: MsmeDraft | CooperativeDraft) -> dict[str, object]:
    """A draft's fields (an `MsmeDraft`'s, a `CooperativeDraft`'s) by name, its owner's (when
    it has one) as `owner.<field>`, for `unchanged`."""
    values = {field.name: getattr(draft, field.name) for field in fields(draft)}
    owner = values.pop("owner", None)
    if isinstance(owner, OwnerDraft):
        values.update(
            {f"owner.{field.name}": getattr(owner, field.name) for field in fields(owner)}
        )
    return values


def owner_as_stored(given: OwnerDraft | None, stored: Mapping[str, object]) -> dict[str, object]:
    """The stored owner's fields (`stored`: by column) as `draft_values` names them, when the
    owner a write gives is that person (by NIK): another person's equal field keeps nothing."""
    if given is None or given.nik.strip() != stored.get("nik"):
        return {}
    return {f"owner.{field}": value for field, value in stored.items()}


def after_founding(turnover_year: int, established_on: date, *, field: str) -> None:
    """A business's sales are of a year it existed in: the year it was established or later."""
    if turnover_year < established_on.year:
        raise InvalidValue(
            field,
            f"must not be before {established_on.year}, the year the business was established "
            f"({established_on})",
        )


def check_report_over(
    *,
    turnover_year: int,
    stored_year: int | None,
    established_on: date | None,
    name: Namer = str,
) -> list[InvalidValue]:
    """The rules a report of new annual figures (`check_scale_report`'s, checked) breaks
    against the record it reports on: its sales are of a year the business existed in, and not
    older than the figures on record (`stored_year`), which they replace: the same year's may
    correct them, an older year's would pass off stale figures as the current ones."""
    got = Collector()
    field = name("turnoverYear")
    if established_on is not None:
        got.take(lambda: after_founding(turnover_year, established_on, field=field))
    if stored_year is not None and turnover_year < stored_year:
        got.errors.append(
            InvalidValue(
                field,
                f"must not be before {stored_year}, the year of the figures on record: a "
                "report replaces them with newer ones",
            )
        )
    return got.errors


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The reference data the rules consult, loaded once per request or import."""

    kbli_sections: Sequence[KbliSection]
    regencies: Container[str]
    today: date


Check = Callable[[Any, str, Vocabulary], Any]
"""A personal field's rule: (the value given, the field's name in errors, the reference data) ->
the value to store, or InvalidValue."""


def personal(*, check: Check, csv: str, description: str | None = None) -> dict[str, Any]:
    """What `OwnerDraft` declares of a field beyond its type and default (a field without a
    default is one every owner has): its rule, the import column it is read from, and how the
    API describes it."""
    return {"check": check, "csv": csv, "description": description}


def api_name(attribute: str) -> str:
    """A field as the API names it (GraphQL, errors, history): `birth_date` -> `birthDate`."""
    first, *rest = attribute.split("_")
    return first + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True, slots=True)
class OwnerDraft:
    """The owner's personal data (UU 27/2022), and the one declaration of what it is.

    Each field here is a column of `msme_owners` (db/models.py and its migration), and every
    other place that handles personal data derives its fields from this class
    (domain/personal.py): the GraphQL `Owner` type and `OwnerInput`, the import's CSV columns
    and staging table, the write path and its history, the change feed, what the access policy
    lets a request select. Adding a personal field is a field here plus its column.
    """

    nik: str = field(
        metadata=personal(
            csv="owner_nik",
            check=lambda value, name, rules: validate_nik(
                value, known_regencies=rules.regencies, field=name
            ),
            description="Nomor Induk Kependudukan, 16 digits.",
        )
    )
    full_name: str = field(
        metadata=personal(
            csv="owner_name",
            check=lambda value, name, rules: validate_name(value, field=name),
        )
    )
    sex: str | None = field(
        default=None,
        metadata=personal(
            csv="owner_sex",
            check=lambda value, name, rules: validate_sex(value, field=name),
            description='"F" or "M".',
        ),
    )
    birth_date: date | None = field(
        default=None,
        metadata=personal(
            csv="owner_birth_date",
            check=lambda value, name, rules: validate_past_date(
                value, field=name, today=rules.today
            ),
        ),
    )
    phone: str | None = field(
        default=None,
        metadata=personal(
            csv="owner_phone", check=lambda value, name, rules: validate_phone(value, field=name)
        ),
    )
    address: str | None = field(
        default=None,
        metadata=personal(
            csv="owner_address", check=lambda value, name, rules: validate_text(value, field=name)
        ),
    )


@dataclass(frozen=True, slots=True)
class MsmeDraft:
    nib: str | None
    name: str
    kbli_code: str
    region: str
    district: str | None = None
    established_on: date | None = None
    capital: int | None = None
    annual_turnover: int | None = None
    turnover_year: int | None = None
    employees: int | None = None
    scale: Scale | None = None
    owner: OwnerDraft | None = None
    sku_number: str | None = None
    sku_issuer: str | None = None


class MsmePatch(TypedDict, total=False):
    """The fields of an `MsmeDraft` an update sets, by draft field name: an absent key stays as
    stored, None clears it. Typed, so a field misnamed or mistyped between the schema's input
    and the merge is mypy's error, not a field silently left as stored."""

    nib: str | None
    name: str
    kbli_code: str
    region: str
    district: str | None
    established_on: date | None
    capital: int | None
    annual_turnover: int | None
    turnover_year: int | None
    employees: int | None
    scale: Scale | None
    owner: OwnerDraft | None
    sku_number: str | None
    sku_issuer: str | None


@dataclass(frozen=True, slots=True)
class CheckedOwner(OwnerDraft):
    """An owner whose every field passed its rule, normalised as it is stored."""


@dataclass(frozen=True, slots=True)
class CheckedMsme:
    """A business registered by NIB, by Surat Keterangan Usaha (its number and the issuing
    desa/kelurahan), or both; each of its fields but `owner` is a column of `msmes`."""

    nib: str | None
    sku_number: str | None
    sku_issuer: str | None
    name: str
    kbli_code: str
    kbli_section: str
    scale: Scale
    declared_scale: Scale | None
    province_code: str
    regency_code: str
    district_code: str | None
    established_on: date | None
    capital: int | None
    annual_turnover: int | None
    turnover_year: int | None
    employees: int | None
    owner: CheckedOwner | None


class Collector:
    """Runs each check, keeping the value or the error, so every broken rule is reported."""

    def __init__(self) -> None:
        self.errors: list[InvalidValue] = []

    def take(self, check: Callable[[], T]) -> T | None:
        try:
            return check()
        except InvalidValue as error:
            self.errors.append(error)
            return None

    def optional(self, value: T | None, check: Callable[[T], T]) -> T | None:
        if value is None:
            return None
        try:
            return check(value)
        except InvalidValue as error:
            self.errors.append(error)
            return None


@functools.lru_cache(maxsize=64)
def _kept(name: Namer) -> Namer:
    """`name` answering each field from memory: an import names the same dozen fields for each
    of its rows (a mutation's namer is new each time, and its entry soon dropped)."""
    return functools.cache(name)


def check_registered_msme(
    draft: MsmeDraft,
    vocabulary: Vocabulary,
    *,
    name: Namer = str,
    unread: Sequence[InvalidValue] = (),
    kept: frozenset[str] = frozenset(),
) -> CheckedMsme | list[InvalidValue]:
    """The values to store, or every broken rule.

    Fields are reported as `name(field)`, where `field` is the draft's field in camelCase
    ("kbliCode", "owner.nik"): a mutation prefixes its argument, an import maps to CSV columns.
    `unread` are the values that could not be read into the draft (a CSV cell that is not a
    number), left out of it and named as `name` names their fields: they are reported with the
    rest, and no scale is settled from figures they left out. `kept` are the fields the write
    leaves as the record it updates stores them (`unchanged`): a name or an owner's field so
    kept is not judged again, nor turnoverYear against establishedOn when it keeps both
    (`changes`), for the record was stored under the rules of its time.
    """
    today = vocabulary.today
    name = _kept(name)
    got = Collector()
    got.errors.extend(unread)
    nib = got.optional(draft.nib, lambda value: validate_nib(value, field=name("nib")))
    title = (
        draft.name
        if not changes(kept, "name")
        else got.take(lambda: validate_name(draft.name, field=name("name")))
    )
    kbli = got.take(
        lambda: (
            draft.kbli_code.strip(),
            kbli_section(draft.kbli_code.strip(), vocabulary.kbli_sections, field=name("kbliCode")),
        )
    )
    place = got.take(
        lambda: validate_place(
            draft.region,
            draft.district,
            region_field=name("region"),
            district_field=name("district"),
        )
    )
    sku = _check_sku(draft, place, got, name)
    established = got.optional(
        draft.established_on,
        lambda value: validate_past_date(value, field=name("establishedOn"), today=today),
    )
    capital = got.optional(
        draft.capital, lambda value: validate_rupiah(value, field=name("capital"))
    )
    turnover = got.optional(
        draft.annual_turnover, lambda value: validate_rupiah(value, field=name("annualTurnover"))
    )
    turnover_year = got.optional(
        draft.turnover_year,
        lambda value: validate_year(value, field=name("turnoverYear"), today=today),
    )
    employees = got.optional(
        draft.employees, lambda value: validate_count(value, field=name("employees"))
    )
    if (
        turnover_year is not None
        and established is not None
        and changes(kept, "turnover_year", "established_on", "annual_turnover")
    ):
        got.take(lambda: after_founding(turnover_year, established, field=name("turnoverYear")))
    figures_valid = not got.errors or all(
        error.field not in (name("capital"), name("annualTurnover"), name("scale"))
        for error in got.errors
    )
    scale = None
    if figures_valid:
        scale = got.take(
            lambda: settle_scale(
                draft.scale, capital=capital, annual_sales=turnover, field=name("scale")
            )
        )
    owner = _check_owner(
        draft.owner, vocabulary, got, lambda field: name(f"owner.{field}"), kept=kept
    )
    # Without errors every check produced its value; the test narrows the types for mypy.
    if got.errors or title is None or kbli is None or place is None or not scale:
        return got.errors
    return CheckedMsme(
        nib=nib,
        sku_number=sku[0] if sku else None,
        sku_issuer=sku[1] if sku else None,
        name=title,
        kbli_code=kbli[0],
        kbli_section=kbli[1],
        scale=scale,
        declared_scale=draft.scale,
        province_code=place.province,
        regency_code=place.regency,
        district_code=place.district,
        established_on=established,
        capital=capital,
        annual_turnover=turnover,
        turnover_year=turnover_year,
        employees=employees,
        owner=owner,
    )


def _check_sku(
    draft: MsmeDraft, place: Place | None, got: Collector, name: Namer
) -> tuple[str, str] | None:
    """The SKU's number and issuer, both or neither, when the draft has one; an error when it
    has neither an SKU nor a NIB (KUR takes either: docs/domain.md). The issuing desa/kelurahan
    is where the business is, so it lies in the record's regency, and in its kecamatan when it
    has one: a writer cannot register an SKU of a village outside its jurisdiction."""
    number, issuer = draft.sku_number, draft.sku_issuer
    if number is None and issuer is None:
        if draft.nib is None:
            got.errors.append(
                InvalidValue(
                    name("nib"),
                    f"give a NIB, or an SKU ({name('skuNumber')} with {name('skuIssuer')})",
                )
            )
        return None
    if number is None or issuer is None:
        missing, given = (
            ("skuNumber", "skuIssuer") if number is None else ("skuIssuer", "skuNumber")
        )
        got.errors.append(InvalidValue(name(missing), f"is required with {name(given)}"))
        return None
    checked_number = got.take(lambda: validate_sku_number(number, field=name("skuNumber")))
    checked_issuer = got.take(lambda: validate_sku_issuer(issuer, field=name("skuIssuer")))
    if checked_number is None or checked_issuer is None:
        return None
    if place is not None:
        within = place.district or place.regency
        if not issued_within(checked_issuer, place.regency, place.district):
            got.errors.append(
                InvalidValue(name("skuIssuer"), f"is not a desa/kelurahan of {within}")
            )
            return None
    return checked_number, checked_issuer


def _check_owner(
    owner: OwnerDraft | None,
    vocabulary: Vocabulary,
    got: Collector,
    name: Namer,
    *,
    kept: frozenset[str],
) -> CheckedOwner | None:
    """Each declared field through its rule, but one the write leaves as stored (`kept`, as
    `owner.<field>`); an owner only when every rule passed."""
    if owner is None:
        return None
    errors_before = len(got.errors)
    values: dict[str, Any] = {}
    for declared in fields(OwnerDraft):
        rule: Check = declared.metadata["check"]
        value = getattr(owner, declared.name)
        field_name = name(api_name(declared.name))
        if value is None or not changes(kept, f"owner.{declared.name}"):
            checked = value
        else:
            checked = got.take(partial(rule, value, field_name, vocabulary))
        values[declared.name] = checked
    if len(got.errors) > errors_before:
        return None
    return CheckedOwner(**values)
