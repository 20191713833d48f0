"""Inputs of the record mutations, and their conversion into the domain's drafts and patches.

In a `…Changes` input an omitted field stays as stored and an explicit null clears it; so does
an optional field of an `importMsmes` row (and of its owner) for the record the row updates.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import date
from typing import Any, cast

import strawberry
from strawberry.utils.str_converters import to_camel_case

from domain.cooperative_records import SAVINGS_AND_LOAN_KBLI, CooperativeDraft, CooperativePatch
from domain.participations import ParticipationPatch
from domain.participations import ParticipationStatus as DomainStatus
from domain.personal import OWNER_COLUMNS
from domain.records import MsmeDraft, OwnerDraft
from domain.scale import Scale as DomainScale
from resolvers.errors import bad_input
from resolvers.msme_writes import MsmeUpdate
from schema.enums import CooperativeType, KspHealth, ParticipationStatus, Scale
from schema.inputs import stored_value
from schema.personal import personal_inputs
from schema.scalars import Rupiah, SignedRupiah

UNSET: Any = strawberry.UNSET


@strawberry.input(
    description="The owner's personal data (UU 27/2022); writing it needs pii:read. In an "
    "import row, an optional field omitted keeps the stored value for the same owner (NIK)."
)
@personal_inputs
class OwnerInput:
    """Its fields are the declared personal fields (domain.records.OwnerDraft)."""


SKU_NUMBER = (
    "Surat Keterangan Usaha number, as the desa/kelurahan wrote it; given with skuIssuer. "
    "Stored trimmed, spaces collapsed, upper-case, so another spelling of a registered one is a "
    "duplicate."
)
SKU_ISSUER = (
    'The desa/kelurahan that issued the SKU, by its code (e.g. "62.71.01.1001"): in the '
    "business's regency, and its kecamatan when it has one."
)


KEPT_IF_OMITTED = "An import row omitting it keeps the stored value; null clears it."


@strawberry.input(
    description="An MSME as an agency's register holds it; one row of an import. A row updating "
    "a record keeps each optional field it omits as stored; one it sends as null it clears."
)
class MsmeImportRow:
    nib: str | None = strawberry.field(
        default=None,
        description="Nomor Induk Berusaha, 13 digits; without one, give an SKU. An import finds "
        "a row's record by it, else by the SKU.",
    )
    sku_number: str | None = strawberry.field(default=None, description=SKU_NUMBER)
    sku_issuer: str | None = strawberry.field(default=None, description=SKU_ISSUER)
    name: str
    kbli_code: str = strawberry.field(description="KBLI 2020 code, 5 digits.")
    region: str = strawberry.field(description='Regency or city code, e.g. "62.71".')
    district: str | None = strawberry.field(
        default=UNSET, description=f'e.g. "62.71.03". {KEPT_IF_OMITTED}'
    )
    established_on: date | None = strawberry.field(default=UNSET, description=KEPT_IF_OMITTED)
    capital: Rupiah | None = strawberry.field(default=UNSET, description=KEPT_IF_OMITTED)
    annual_turnover: Rupiah | None = strawberry.field(default=UNSET, description=KEPT_IF_OMITTED)
    turnover_year: int | None = strawberry.field(default=UNSET, description=KEPT_IF_OMITTED)
    employees: int | None = strawberry.field(default=UNSET, description=KEPT_IF_OMITTED)
    scale: Scale | None = strawberry.field(
        default=UNSET,
        description="Declared scale (as on the NIB), kept as `declaredScale`; must fit capital "
        "or turnover. The record's `scale` is computed from the figures, this one only without "
        "them. An import row omitting it keeps the stored one while the figures it fits stand; "
        "other figures given without one clear it.",
    )
    owner: OwnerInput | None = strawberry.field(
        default=None, description="Omitted or null in an import row: the stored owner is kept."
    )


@strawberry.input(description="A new MSME in your jurisdiction, registered by NIB or SKU or both.")
class CreateMsmeInput(MsmeImportRow):
    cooperative_id: strawberry.ID | None = strawberry.field(
        default=None, description="The cooperative it is a member of; not a dissolved one."
    )


@strawberry.input(description="Fields to change; omitted fields stay as they are.")
class MsmeChanges:
    nib: str | None = strawberry.field(
        default=UNSET,
        description="Its NIB, e.g. once a business registered by SKU has one; null clears it "
        "from a business with an SKU.",
    )
    sku_number: str | None = strawberry.field(default=UNSET, description=SKU_NUMBER)
    sku_issuer: str | None = strawberry.field(default=UNSET, description=SKU_ISSUER)
    name: str | None = UNSET
    kbli_code: str | None = UNSET
    region: str | None = UNSET
    district: str | None = UNSET
    established_on: date | None = UNSET
    capital: Rupiah | None = UNSET
    annual_turnover: Rupiah | None = UNSET
    turnover_year: int | None = UNSET
    employees: int | None = UNSET
    scale: Scale | None = strawberry.field(
        default=UNSET,
        description="Declared scale, as on create; changing the figures without one clears it.",
    )
    cooperative_id: strawberry.ID | None = strawberry.field(
        default=UNSET,
        description="The cooperative it is a member of; a dissolved one only if it is already.",
    )
    owner: OwnerInput | None = strawberry.field(
        default=UNSET,
        description=(
            "Replaces the owner whole: an owner field left out is cleared (an import row keeps"
            " the owner fields it leaves out); null erases the owner's personal data from the"
            " register. Their NIK stays where it names them as the data subject of reads of"
            " their figures (the history's entries, eligibility decisions) and in the audit"
            " trail."
        ),
    )


@strawberry.input(description="New annual figures of an MSME; its scale is computed from them.")
class ScaleReport:
    annual_sales: Rupiah = strawberry.field(description="Hasil penjualan tahunan.")
    turnover_year: int = strawberry.field(
        description="The year the sales were made: not before the year of the figures on "
        "record, nor before the business was established."
    )
    effective_from: date = strawberry.field(description="When the scale takes effect.")
    capital: Rupiah | None = strawberry.field(
        default=None, description="Modal usaha; omitted: the stored capital."
    )


KSP_HEALTH = (
    "Health rating of the savings and loans, for a KSP or a cooperative with KBLI "
    f"{', '.join(SAVINGS_AND_LOAN_KBLI[:-1])} or {SAVINGS_AND_LOAN_KBLI[-1]}; given with "
    "kspHealthBookYear."
)
SURPLUS = "SHU of the last book year; negative for a loss (SignedRupiah)."
KSP_HEALTH_BOOK_YEAR = (
    "The closed book year whose accounts the rating assessed; R11 counts a rating only for the "
    "book year whose RAT is due, or later."
)


@strawberry.input(description="A new cooperative in your jurisdiction.")
class CreateCooperativeInput:
    legal_entity_no: str = strawberry.field(
        description=(
            "Nomor badan hukum; the natural key. A Kemenkumham number is stored as"
            " AHU-<serial, seven digits or more>.AH.01.26.TAHUN <year>, so another spelling"
            " of a registered one (other leading zeros, case or spaces) is a duplicate."
        )
    )
    name: str
    type: CooperativeType
    region: str
    district: str | None = None
    tier: str = strawberry.field(default="primary", description='"primary" or "secondary".')
    ods_no: str | None = None
    kbli_code: str | None = None
    members_male: int = 0
    members_female: int = 0
    business_volume: Rupiah = strawberry.field(default=Rupiah(0))
    assets: Rupiah = strawberry.field(default=Rupiah(0))
    surplus: SignedRupiah | None = strawberry.field(default=None, description=SURPLUS)
    book_year: int | None = None
    established_on: date | None = strawberry.field(
        default=None, description="Date of the deed of establishment (akta pendirian)."
    )
    last_rat_date: date | None = None
    last_rat_book_year: int | None = None
    ksp_health: KspHealth | None = strawberry.field(default=None, description=KSP_HEALTH)
    ksp_health_book_year: int | None = strawberry.field(
        default=None, description=KSP_HEALTH_BOOK_YEAR
    )


@strawberry.input(description="Fields to change; omitted fields stay as they are.")
class CooperativeChanges:
    name: str | None = UNSET
    type: CooperativeType | None = UNSET
    region: str | None = UNSET
    district: str | None = UNSET
    tier: str | None = UNSET
    ods_no: str | None = UNSET
    kbli_code: str | None = UNSET
    members_male: int | None = UNSET
    members_female: int | None = UNSET
    business_volume: Rupiah | None = UNSET
    assets: Rupiah | None = UNSET
    surplus: SignedRupiah | None = strawberry.field(default=UNSET, description=SURPLUS)
    book_year: int | None = UNSET
    established_on: date | None = UNSET
    last_rat_date: date | None = UNSET
    last_rat_book_year: int | None = UNSET
    ksp_health: KspHealth | None = strawberry.field(default=UNSET, description=KSP_HEALTH)
    ksp_health_book_year: int | None = strawberry.field(
        default=UNSET, description=KSP_HEALTH_BOOK_YEAR
    )


@strawberry.input(
    description="A business taking part in a programme: give msmeId or cooperativeId."
)
class ParticipationInput:
    programme_id: strawberry.ID
    role: str = strawberry.field(description='e.g. "supplier", "producer", "recipient".')
    msme_id: strawberry.ID | None = None
    cooperative_id: strawberry.ID | None = None
    # The stored value, as the schema's enums hand values over: the SDL printer serialises it.
    status: ParticipationStatus = strawberry.field(default=ParticipationStatus.ACTIVE.value)
    detail: str | None = None
    started_on: date | None = None


@strawberry.input(description="Fields to change; omitted fields stay as they are.")
class ParticipationChanges:
    status: ParticipationStatus | None = UNSET
    detail: str | None = UNSET
    started_on: date | None = UNSET


def owner_draft(owner: OwnerInput | None) -> OwnerDraft | None:
    """The owner an input gives, an omitted field as null: the owner replaced whole."""
    if owner is None:
        return None
    return OwnerDraft(**{column: _sent(getattr(owner, column)) for column in OWNER_COLUMNS})


def _sent(value: Any) -> Any:
    """A value as sent, an omitted one (UNSET) as null."""
    return None if value is UNSET else value


def _omitted(given: object) -> frozenset[str]:
    """The fields of an input the client left out (UNSET), by their Python names."""
    definition = given.__strawberry_definition__  # type: ignore[attr-defined]
    return frozenset(
        field.python_name
        for field in definition.fields
        if getattr(given, field.python_name) is UNSET
    )


def _scale(choice: Scale | None) -> DomainScale | None:
    value = stored_value(choice)
    return None if value is None else DomainScale(value)


def msme_draft(row: MsmeImportRow) -> MsmeDraft:
    """The MSME a row or `createMsme` gives, an omitted field as null."""
    return MsmeDraft(
        nib=row.nib,
        sku_number=row.sku_number,
        sku_issuer=row.sku_issuer,
        name=row.name,
        kbli_code=row.kbli_code,
        region=row.region,
        district=_sent(row.district),
        established_on=_sent(row.established_on),
        capital=_sent(row.capital),
        annual_turnover=_sent(row.annual_turnover),
        turnover_year=_sent(row.turnover_year),
        employees=_sent(row.employees),
        scale=_scale(_sent(row.scale)),
        owner=owner_draft(row.owner),
    )


def import_row(row: MsmeImportRow) -> tuple[MsmeDraft, frozenset[str]]:
    """A row's draft and the draft fields it omits, as db.imports names them (`owner.<field>`
    for the owner's): a record the row updates keeps those as stored, as it keeps the columns a
    file leaves out."""
    owner = frozenset() if row.owner is None else _omitted(row.owner)
    return msme_draft(row), _omitted(row) | {f"owner.{field}" for field in owner}


def _given(changes: object, required: tuple[str, ...]) -> dict[str, Any]:
    """The fields the client sent (a null it sent is kept, an omitted field is dropped); a null
    for a field every record must have is refused. Read off the input's strawberry definition,
    so untyped: each `…_patch` below converts what differs and casts the rest to its patch type,
    whose keys tests/test_record_patches.py holds to the input's fields."""
    definition = changes.__strawberry_definition__  # type: ignore[attr-defined]
    given = {
        field.python_name: getattr(changes, field.python_name)
        for field in definition.fields
        if getattr(changes, field.python_name) is not UNSET
    }
    for name in required:
        if name in given and given[name] is None:
            raise bad_input(f"changes.{to_camel_case(name)}", "must not be null")
    return given


def msme_patch(changes: MsmeChanges) -> MsmeUpdate:
    given = _given(changes, ("name", "kbli_code", "region"))
    if "scale" in given:
        given["scale"] = _scale(given["scale"])
    if "owner" in given:
        given["owner"] = owner_draft(given["owner"])
    return cast(MsmeUpdate, given)


def cooperative_draft(given: CreateCooperativeInput) -> CooperativeDraft:
    values = {
        field.name: getattr(given, field.name) for field in dataclass_fields(CooperativeDraft)
    }
    values["type"] = stored_value(given.type)
    values["ksp_health"] = stored_value(given.ksp_health)
    return CooperativeDraft(**values)


def cooperative_patch(changes: CooperativeChanges) -> CooperativePatch:
    given = _given(
        changes,
        (
            "name",
            "type",
            "region",
            "tier",
            "members_male",
            "members_female",
            "business_volume",
            "assets",
        ),
    )
    if "type" in given:
        given["type"] = stored_value(given["type"])
    if "ksp_health" in given:
        given["ksp_health"] = stored_value(given["ksp_health"])
    return cast(CooperativePatch, given)


def participation_status(choice: ParticipationStatus) -> DomainStatus:
    return DomainStatus(str(stored_value(choice)))


def participation_patch(changes: ParticipationChanges) -> ParticipationPatch:
    given = _given(changes, ("status",))
    if "status" in given:
        given["status"] = participation_status(given["status"])
    return cast(ParticipationPatch, given)
