"""Records: MSMEs with their owners, cooperatives, programmes and participation.

Fields that read other tables declare the columns of this row they need (`metadata["columns"]`),
so a page fetches only the columns its selection uses (see resolvers/lookahead.py).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry

from auth.scopes import Scope
from domain.programmes import ProgrammeKind
from domain.scale import CORRECTION, CORRECTIONS
from resolvers import history, relations
from schema.enums import (
    CooperativeStatus,
    CooperativeType,
    KspHealth,
    ParticipationStatus,
    Scale,
)
from schema.permissions import requires
from schema.personal import personal_fields
from schema.scalars import Rupiah, SignedRupiah
from schema.types.changes import RecordChange
from schema.types.pagination import Connection
from schema.types.regions import Region

CHANGES = "Who changed this record, when and what: its latest `first` changes, oldest first."
PARTICIPATIONS = "Its part in programmes: the first `first`, in the order they were added."


def _region_field(resolver: Any, column: str, description: str) -> Any:
    return strawberry.field(
        resolver=resolver, metadata={"columns": (column,)}, description=description
    )


@strawberry.type(description="The owner of an MSME: personal data under UU 27/2022.")
@personal_fields
class Owner:
    """Its fields are the declared personal fields (domain.records.OwnerDraft)."""


@strawberry.type(description="A scale in force from a date: the history behind 'naik kelas'.")
class ScaleChange:
    scale: Scale
    effective_from: date
    annual_sales: Rupiah | None
    capital: Rupiah | None
    turnover_year: int | None = strawberry.field(
        description="The year `annualSales` were made: a graduation ('naik kelas') counts in "
        "it, not in the year of `effectiveFrom`. Null when not known (no annual sales, none "
        "given with them, or recorded before the year was kept): such a change counts in the "
        "year of `effectiveFrom`."
    )
    rule_version: str = strawberry.field(
        description="The rule the scale was computed under (PP7_2021). "
        f"{' or '.join(sorted(CORRECTIONS))}: a correction, from which the next change is "
        "counted but which is no graduation ('naik kelas'): PP7_2021/0037 of a record the "
        "register had labelled by an outdated declaration, dated the day it was made; "
        f"{CORRECTION} a change an update or an import made to the figures of a year already "
        "recorded (their turnoverYear not later than the year the entry before counts in, or "
        "not known), such as a mistyped figure and its fix. A change an update or an import "
        "brings with a later year's sales, and every reportScaleChange, is PP7_2021."
    )


@strawberry.type(description="A Kementerian, Badan or Dinas programme.")
class Programme:
    id: strawberry.ID
    name: str
    kind: str = strawberry.field(
        description=f"What the programme does: one of {', '.join(ProgrammeKind)}. A business "
        "taking part in a subsidised_credit programme (KUR), ACTIVE, fails R12."
    )
    legal_basis: str | None
    starts_on: date | None
    jurisdiction: Region = _region_field(
        relations.jurisdiction_region, "jurisdiction", "Where the programme runs."
    )
    participants: list[Participation] | None = requires(
        Scope.RECORDS_READ,
        resolver=relations.participants,
        description="Participants whose business lies in the caller's jurisdiction.",
    )


@strawberry.type(description="A business's part in a programme (supplier, producer, trainee, …).")
class Participation:
    id: strawberry.ID
    role: str
    status: ParticipationStatus
    detail: str | None
    started_on: date | None
    programme: Programme = strawberry.field(
        resolver=relations.participation_programme, metadata={"columns": ("programme_id",)}
    )
    msme: Msme | None = strawberry.field(
        resolver=relations.participation_msme, metadata={"columns": ("msme_id",)}
    )
    cooperative: Cooperative | None = strawberry.field(
        resolver=relations.participation_cooperative, metadata={"columns": ("cooperative_id",)}
    )
    version: int
    changes: list[RecordChange] | None = requires(
        Scope.RECORDS_READ, resolver=history.participation_changes, description=CHANGES
    )


@strawberry.type(description="A cooperative (koperasi) registered with its legal-entity number.")
class Cooperative:
    id: strawberry.ID
    legal_entity_no: str = strawberry.field(
        description=(
            "Nomor badan hukum: a Kemenkumham number in its one spelling"
            " (AHU-0000032.AH.01.26.TAHUN 2019), or an older dinas number as registered."
        )
    )
    ods_no: str | None = strawberry.field(description="Nomor Induk Koperasi in the ministry's ODS.")
    name: str
    type: CooperativeType
    tier: str
    status: CooperativeStatus
    is_active: bool = strawberry.field(
        resolver=lambda root: root.status == "active",
        metadata={"columns": ("status",), "sql": lambda row: row.c.status == "active"},
    )
    kbli_code: str | None
    members_male: int
    members_female: int
    member_count: int = strawberry.field(
        resolver=lambda root: root.members_male + root.members_female,
        metadata={
            "columns": ("members_male", "members_female"),
            "sql": lambda row: row.c.members_male + row.c.members_female,
        },
        description="Members (persons) of the cooperative, male and female.",
    )
    business_volume: Rupiah = strawberry.field(description="Volume usaha of the last book year.")
    assets: Rupiah
    surplus: SignedRupiah | None = strawberry.field(
        description="SHU of the last book year; negative for a loss."
    )
    book_year: int | None
    established_on: date | None = strawberry.field(
        description="Date of the deed of establishment (akta pendirian), when recorded."
    )
    last_rat_date: date | None
    last_rat_book_year: int | None
    ksp_health: KspHealth | None = strawberry.field(
        description="Health rating of its savings and loans (KSP/USP), when recorded."
    )
    ksp_health_book_year: int | None = strawberry.field(
        description="The book year the health rating assessed."
    )
    version: int
    province: Region = _region_field(relations.province, "province_code", "Province of the seat.")
    regency: Region = _region_field(relations.regency, "regency_code", "Regency or city.")
    district: Region | None = _region_field(relations.district, "district_code", "Kecamatan.")
    member_msmes: Connection[Msme] = strawberry.field(  # type: ignore[assignment]  # a PageResult is read as the Connection
        resolver=relations.member_msmes,
        description=(
            "MSMEs that are members, within the caller's jurisdiction, in id order; pass "
            "pageInfo.endCursor as `after` for the next page."
        ),
    )
    participations: list[Participation] = strawberry.field(
        resolver=relations.cooperative_participations, description=PARTICIPATIONS
    )
    changes: list[RecordChange] | None = requires(
        Scope.RECORDS_READ, resolver=history.cooperative_changes, description=CHANGES
    )


@strawberry.type(description="A micro, small or medium enterprise (UMKM).")
class Msme:
    id: strawberry.ID
    nib: str | None = strawberry.field(
        description="Nomor Induk Berusaha, 13 digits (OSS); null for a business registered by "
        "SKU alone."
    )
    sku_number: str | None = strawberry.field(
        description="Surat Keterangan Usaha number (trimmed, spaces collapsed, upper-case), "
        "when the business is registered by SKU."
    )
    sku_issuer: str | None = strawberry.field(
        description="The desa/kelurahan that issued the SKU, by its Kemendagri code "
        '(e.g. "62.71.01.1001").'
    )
    name: str
    kbli_code: str = strawberry.field(description="Primary KBLI 2020 code (5 digits).")
    kbli_section: str = strawberry.field(description="KBLI 2020 section letter, A-U.")
    scale: Scale = strawberry.field(
        description="PP 7/2021, computed from the figures (annual sales, else capital); the "
        "declared scale only for a record without figures. What figures and indicators count."
    )
    declared_scale: Scale | None = strawberry.field(
        description="The scale declared for it (as on the NIB), which may differ from `scale`. "
        "Null when none was declared, and for a record stored before declarations were kept "
        "apart (the upgrade to migration 0037) whose scale that upgrade left as it was: its "
        "figures agreed with it, or it had none (its `scale` is then the declared one, named "
        "here from its next write)."
    )
    established_on: date | None
    capital: Rupiah | None = strawberry.field(
        description="Modal usaha, excluding land and buildings."
    )
    annual_turnover: Rupiah | None = strawberry.field(description="Hasil penjualan tahunan.")
    turnover_year: int | None
    employees: int | None
    is_active: bool
    version: int
    province: Region = _region_field(relations.province, "province_code", "Province.")
    regency: Region = _region_field(relations.regency, "regency_code", "Regency or city.")
    district: Region | None = _region_field(relations.district, "district_code", "Kecamatan.")
    cooperative: Cooperative | None = strawberry.field(
        resolver=relations.cooperative_of_msme,
        metadata={"columns": ("cooperative_id",)},
        description="The cooperative this MSME is a member of.",
    )
    owner: Owner | None = requires(
        Scope.PII_READ, resolver=relations.owner, description="The owner's personal data."
    )
    scale_history: list[ScaleChange] = strawberry.field(resolver=relations.scale_history)
    participations: list[Participation] = strawberry.field(
        resolver=relations.msme_participations, description=PARTICIPATIONS
    )
    changes: list[RecordChange] | None = requires(
        Scope.RECORDS_READ, resolver=history.msme_changes, description=CHANGES
    )
