"""The tables, declared once for Alembic and for the queries in `db/queries/`.

Enumerations are text columns with CHECK constraints rather than PostgreSQL enum types: a new
cooperative type or programme kind is then a one-line migration instead of an enum rewrite.

Every business row carries `province_code` and `regency_code` as real columns (checked against
each other) because jurisdiction filters, partitioning by province and the national rollups all
key on them; deriving them per query from a district code would defeat the indexes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from domain.personal import OWNER_FIELDS

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

COOPERATIVE_TYPES = ("produsen", "konsumen", "simpan_pinjam", "pemasaran", "jasa")
COOPERATIVE_STATUSES = ("active", "inactive", "dissolved")
SCALES = ("micro", "small", "medium", "large")
REGION_LEVELS = ("national", "province", "regency", "city", "district")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def _province_of_regency() -> CheckConstraint:
    return CheckConstraint("province_code = left(regency_code, 2)", name="province_of_regency")


def _region_consistency() -> tuple[CheckConstraint, ...]:
    """The three region columns must describe one place, so a row cannot drift between them."""
    return (
        _province_of_regency(),
        CheckConstraint(
            "district_code IS NULL OR left(district_code, 5) = regency_code",
            name="regency_of_district",
        ),
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# 32 random bits from PostgreSQL's strong random source: the first 8 hex digits of a version 4
# UUID are all random (its fixed version bits come later).
RECORD_KEY = "('x' || left(gen_random_uuid()::text, 8))::bit(32)::bigint"


def _record_key() -> Mapped[int]:
    """A record's permanent secret key for the cell-key method (domain/cellkey.py): drawn once
    by the database when the row is made, never written by a client, never published, and not
    part of the change history (which holds only what a client changed)."""
    return mapped_column(BigInteger, server_default=text(RECORD_KEY))


class Region(Base):
    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint(_one_of("level", REGION_LEVELS), name="level"),
        # What places refer to: a code together with its parent (see Msme's keys).
        UniqueConstraint("code", "parent_code"),
    )

    code: Mapped[str] = mapped_column(String(13), primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)


class KbliSection(Base):
    __tablename__ = "kbli_sections"

    section: Mapped[str] = mapped_column(String(1), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    first_division: Mapped[int] = mapped_column(SmallInteger)
    last_division: Mapped[int] = mapped_column(SmallInteger)


class KbliCode(Base):
    __tablename__ = "kbli_codes"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    version: Mapped[str] = mapped_column(String(4))
    title: Mapped[str] = mapped_column(Text)


class Agency(Base):
    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    org_kind: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(ForeignKey("regions.code"))


class Cooperative(Base):
    __tablename__ = "cooperatives"
    __table_args__ = (
        CheckConstraint(_one_of("type", COOPERATIVE_TYPES), name="type"),
        CheckConstraint(_one_of("status", COOPERATIVE_STATUSES), name="status"),
        CheckConstraint("tier IN ('primary', 'secondary')", name="tier"),
        CheckConstraint(
            "members_male >= 0 AND members_female >= 0 AND business_volume >= 0 AND assets >= 0",
            name="non_negative",
        ),
        *_region_consistency(),
        Index("ix_cooperatives_province_type_status", "province_code", "type", "status"),
        Index("ix_cooperatives_regency_code", "regency_code"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    legal_entity_no: Mapped[str] = mapped_column(Text, unique=True)
    ods_no: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    tier: Mapped[str] = mapped_column(String(10), server_default="primary")
    type: Mapped[str] = mapped_column(String(15))
    province_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    regency_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    district_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))
    kbli_code: Mapped[str | None] = mapped_column(String(5))
    members_male: Mapped[int] = mapped_column(Integer, server_default="0")
    members_female: Mapped[int] = mapped_column(Integer, server_default="0")
    business_volume: Mapped[int] = mapped_column(BigInteger, server_default="0")
    assets: Mapped[int] = mapped_column(BigInteger, server_default="0")
    surplus: Mapped[int | None] = mapped_column(BigInteger)
    book_year: Mapped[int | None] = mapped_column(SmallInteger)
    established_on: Mapped[date | None] = mapped_column(Date)
    last_rat_date: Mapped[date | None] = mapped_column(Date)
    last_rat_book_year: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cell_key: Mapped[int] = _record_key()


class Msme(Base):
    __tablename__ = "msmes"
    __table_args__ = (
        CheckConstraint(_one_of("scale", SCALES), name="scale"),
        CheckConstraint(
            "capital >= 0 AND annual_turnover >= 0 AND employees >= 0", name="non_negative"
        ),
        CheckConstraint("nib ~ '^[0-9]{13}$'", name="nib_format"),
        *_region_consistency(),
        # One check per key proves the place exists and its parts agree (migration 0007): a
        # bulk import pays one foreign-key lookup per row and key.
        ForeignKeyConstraint(
            ["regency_code", "province_code"], ["regions.code", "regions.parent_code"]
        ),
        ForeignKeyConstraint(
            ["district_code", "regency_code"], ["regions.code", "regions.parent_code"]
        ),
        Index("ix_msmes_province_code_id", "province_code", "id"),
        Index("ix_msmes_regency_code_id", "regency_code", "id"),
        Index("ix_msmes_cooperative_id", "cooperative_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    nib: Mapped[str | None] = mapped_column(String(13), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kbli_code: Mapped[str] = mapped_column(String(5))
    kbli_section: Mapped[str] = mapped_column(ForeignKey("kbli_sections.section"))
    scale: Mapped[str] = mapped_column(String(6))
    province_code: Mapped[str] = mapped_column(String(13))
    regency_code: Mapped[str] = mapped_column(String(13))
    district_code: Mapped[str | None] = mapped_column(String(13))
    established_on: Mapped[date | None] = mapped_column(Date)
    capital: Mapped[int | None] = mapped_column(BigInteger)
    annual_turnover: Mapped[int | None] = mapped_column(BigInteger)
    turnover_year: Mapped[int | None] = mapped_column(SmallInteger)
    employees: Mapped[int | None] = mapped_column(Integer)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cell_key: Mapped[int] = _record_key()


class MsmeOwner(Base):
    """The owner's personal data (UU 27/2022), apart so record queries never read this table.

    Its columns besides `msme_id` are the declared personal fields (domain.records.OwnerDraft),
    added below by `_personal_columns`; the migration that adds a field adds its column."""

    __tablename__ = "msme_owners"
    __table_args__ = (
        CheckConstraint("nik ~ '^[0-9]{16}$'", name="nik_format"),
        CheckConstraint("sex IN ('F', 'M')", name="sex"),
    )

    msme_id: Mapped[int] = mapped_column(
        ForeignKey("msmes.id", ondelete="CASCADE"), primary_key=True
    )


OWNER_STORAGE: dict[str, TypeEngine[Any]] = {"nik": String(16), "sex": String(1)}
"""Personal columns stored otherwise than their kind says (text, or a date for a date)."""
OWNER_INDEXED = frozenset({"nik"})
"""Personal columns with an index: an owner is found by NIK."""


def _personal_columns() -> None:
    for field in OWNER_FIELDS:
        storage = OWNER_STORAGE.get(field.column, Date() if field.kind is date else Text())
        column = mapped_column(
            storage, nullable=not field.required, index=field.column in OWNER_INDEXED
        )
        setattr(MsmeOwner, field.column, column)


_personal_columns()


class MsmeScaleHistory(Base):
    """Effective-dated scale, one row per change, so graduations ("naik kelas") can be counted."""

    __tablename__ = "msme_scale_history"
    __table_args__ = (
        CheckConstraint(_one_of("scale", SCALES), name="scale"),
        UniqueConstraint("msme_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Indexed by the unique constraint, whose first column it is.
    msme_id: Mapped[int] = mapped_column(ForeignKey("msmes.id", ondelete="CASCADE"))
    scale: Mapped[str] = mapped_column(String(6))
    effective_from: Mapped[date] = mapped_column(Date)
    annual_sales: Mapped[int | None] = mapped_column(BigInteger)
    capital: Mapped[int | None] = mapped_column(BigInteger)
    rule_version: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Programme(Base):
    __tablename__ = "programmes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(30))
    owner_agency_id: Mapped[str | None] = mapped_column(ForeignKey("agencies.id"))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    jurisdiction: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    starts_on: Mapped[date | None] = mapped_column(Date)


class Participation(Base):
    __tablename__ = "participations"
    __table_args__ = (
        CheckConstraint(
            "(msme_id IS NULL) <> (cooperative_id IS NULL)", name="exactly_one_subject"
        ),
        UniqueConstraint("programme_id", "msme_id", "cooperative_id", "role"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Indexed by the unique constraint, whose first column it is.
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"))
    msme_id: Mapped[int | None] = mapped_column(
        ForeignKey("msmes.id", ondelete="CASCADE"), index=True
    )
    cooperative_id: Mapped[int | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    started_on: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, server_default="1")


RECORD_KINDS = ("msme", "cooperative", "participation")
CHANGE_OPERATIONS = ("create", "update", "deactivate", "scale", "import")


class RecordChange(Base):
    """Who changed which record, when and how, written in the transaction of the change.

    `changes` maps each changed column to {"before": …, "after": …}; personal data never enters
    it (the history is readable with records:read alone), only the names of the personal fields
    that changed, in `personal_fields`.
    """

    __tablename__ = "record_changes"
    __table_args__ = (
        CheckConstraint(_one_of("record_kind", RECORD_KINDS), name="record_kind"),
        CheckConstraint(_one_of("operation", CHANGE_OPERATIONS), name="operation"),
        Index("ix_record_changes_record", "record_kind", "record_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    client_id: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str] = mapped_column(Text)
    record_kind: Mapped[str] = mapped_column(String(15))
    record_id: Mapped[int] = mapped_column(BigInteger)
    operation: Mapped[str] = mapped_column(String(15))
    version: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict[str, object]] = mapped_column(JSONB)
    personal_fields: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")


class MsmeImportBatch(Base):
    """The history entry of a run of records an import created, ids `first_id` to `last_id`
    (migration 0015): read per record through the view `record_history`; and their first scale
    entry (migration 0016), through the view `scale_history`."""

    __tablename__ = "msme_import_batches"
    __table_args__ = (
        CheckConstraint("first_id <= last_id", name="ids"),
        Index("uq_msme_import_batches_first_id", "first_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """From record_changes' sequence, so the entry sorts with the records' later changes."""
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    client_id: Mapped[str] = mapped_column(Text)
    organisation: Mapped[str] = mapped_column(Text)
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    # The records' first scale entry (migration 0016), read through the view `scale_history`;
    # empty for batches of imports that still wrote it as rows.
    effective_from: Mapped[date | None] = mapped_column(Date)
    rule_version: Mapped[str | None] = mapped_column(String(20))


class Indicator(Base):
    __tablename__ = "indicators"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_id: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(20))
    higher_is_better: Mapped[bool]
    computable_from_records: Mapped[bool]


class Target(Base):
    __tablename__ = "targets"
    __table_args__ = (
        CheckConstraint("kind IN ('baseline', 'target')", name="kind"),
        UniqueConstraint("indicator_code", "jurisdiction", "year", "kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    indicator_code: Mapped[str] = mapped_column(ForeignKey("indicators.code"))
    jurisdiction: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    year: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[Decimal] = mapped_column(Numeric)
    qualifier: Mapped[str | None] = mapped_column(String(20))
    year_inferred: Mapped[bool] = mapped_column(server_default=text("false"))
    source: Mapped[str] = mapped_column(Text)


class Realisation(Base):
    """Reported values; rows are only ever added, so the history of reports is kept."""

    __tablename__ = "realisations"
    __table_args__ = (
        Index("ix_realisations_lookup", "indicator_code", "jurisdiction", "year", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    indicator_code: Mapped[str] = mapped_column(ForeignKey("indicators.code"))
    jurisdiction: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    year: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[Decimal] = mapped_column(Numeric)
    qualifier: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    reported_on: Mapped[date | None] = mapped_column(Date)
    reported_by: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    org_kind: Mapped[str] = mapped_column(String(20))
    jurisdiction: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    purpose: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrustedDocument(Base):
    """An operation a client is registered to run; in trusted-documents mode, the only kind."""

    __tablename__ = "trusted_documents"
    __table_args__ = (CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),)

    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SigningKey(Base):
    """Token-signing keys; retired keys stay published until every token they signed expired."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk: Mapped[dict[str, str]] = mapped_column(JSONB)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Preparation(Base):
    """What the database was last prepared for (migration 0018, db/preparation.py): one row."""

    __tablename__ = "preparation"
    __table_args__ = (CheckConstraint("singleton", name="one_row"),)

    singleton: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    fingerprint: Mapped[str] = mapped_column(Text)
    revisions: Mapped[list[str]] = mapped_column(ARRAY(Text))
    prepared_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AuditEntry(Base):
    """Who received records or personal data, written before the response leaves (UU 27/2022).

    Append-only and hash-chained by triggers in migration 0002: `seq`, `prev_hash` and `hash`
    are set by the database under a lock, so no client can fork or rewrite the chain.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    client_id: Mapped[str] = mapped_column(Text, index=True)
    entry: Mapped[dict[str, object]] = mapped_column(JSONB)
    subjects: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    prev_hash: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(Text)


class AuditSeal(Base):
    """An audit entry's keyed MAC, chained over the entries before it (migration 0010).

    Written in batches by the service with a key the database never holds, so whoever can
    rewrite `audit_log` and recompute its hashes still cannot make the seals agree.
    """

    __tablename__ = "audit_seals"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mac: Mapped[str] = mapped_column(Text)
    sealed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


GUARANTEE_STATUSES = ("active", "claimed", "paid_off", "defaulted")
VERDICTS = ("ELIGIBLE", "NOT_ELIGIBLE", "NEEDS_REVIEW")


class EligibilityRuleset(Base):
    """Every rule-set version ever used, verbatim, so any stored decision can be replayed."""

    __tablename__ = "eligibility_rulesets"

    product: Mapped[str] = mapped_column(String(60), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date)
    document: Mapped[dict[str, object]] = mapped_column(JSONB)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EligibilityDecision(Base):
    """A decision with the facts it was made on, and a person's review where one was needed."""

    __tablename__ = "eligibility_decisions"
    __table_args__ = (
        CheckConstraint(_one_of("verdict", VERDICTS), name="verdict"),
        CheckConstraint(
            "reviewed_verdict IS NULL OR reviewed_verdict IN ('ELIGIBLE', 'NOT_ELIGIBLE')",
            name="reviewed_verdict",
        ),
        CheckConstraint(
            "(msme_id IS NULL) <> (cooperative_id IS NULL)", name="exactly_one_subject"
        ),
        ForeignKeyConstraint(
            ["product", "ruleset_version"],
            ["eligibility_rulesets.product", "eligibility_rulesets.version"],
        ),
        Index("ix_eligibility_decisions_msme_id", "msme_id"),
        Index("ix_eligibility_decisions_cooperative_id", "cooperative_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    client_id: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(Text)
    msme_id: Mapped[int | None] = mapped_column(ForeignKey("msmes.id"))
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"))
    subject_key: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    regency_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    loan_amount: Mapped[int] = mapped_column(BigInteger)
    tenor_months: Mapped[int] = mapped_column(SmallInteger)
    product: Mapped[str] = mapped_column(String(60))
    ruleset_version: Mapped[str] = mapped_column(String(40))
    check_date: Mapped[date] = mapped_column(Date)
    facts: Mapped[dict[str, object]] = mapped_column(JSONB)
    verdict: Mapped[str] = mapped_column(String(12))
    results: Mapped[list[dict[str, object]]] = mapped_column(JSONB)
    coverage_amount: Mapped[int] = mapped_column(BigInteger)
    estimated_fee: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reviewed_verdict: Mapped[str | None] = mapped_column(String(12))
    reviewer: Mapped[str | None] = mapped_column(Text)
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by_client: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Guarantor(Base):
    """A guarantee company's equity, against which its gearing limit (POJK 2/2017) is checked."""

    __tablename__ = "guarantors"
    __table_args__ = (CheckConstraint("equity > 0 AND gearing_limit > 0", name="positive"),)

    client_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    equity: Mapped[int] = mapped_column(BigInteger)
    gearing_limit: Mapped[Decimal] = mapped_column(Numeric(6, 2), server_default="20")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Guarantee(Base):
    """A guarantee a BUMD issued on an eligible decision; region columns feed the figures."""

    __tablename__ = "guarantees"
    __table_args__ = (
        CheckConstraint(_one_of("status", GUARANTEE_STATUSES), name="status"),
        CheckConstraint(
            "amount > 0 AND coverage_amount > 0 AND coverage_amount <= amount", name="amounts"
        ),
        CheckConstraint("ends_on > starts_on", name="period"),
        _province_of_regency(),
        Index("ix_guarantees_guarantor_status", "guarantor_client_id", "status"),
        Index("ix_guarantees_province_code", "province_code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    decision_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("eligibility_decisions.id"), unique=True
    )
    guarantor_client_id: Mapped[str] = mapped_column(String(200))
    msme_id: Mapped[int | None] = mapped_column(ForeignKey("msmes.id"), index=True)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    province_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    regency_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    bank: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    coverage_amount: Mapped[int] = mapped_column(BigInteger)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    cell_key: Mapped[int] = _record_key()


class GuaranteeStatusChange(Base):
    """The status history of a guarantee: who said it changed, when it took effect, and why."""

    __tablename__ = "guarantee_status_changes"
    __table_args__ = (CheckConstraint(_one_of("to_status", GUARANTEE_STATUSES), name="to_status"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    guarantee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("guarantees.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str] = mapped_column(String(10))
    effective_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def _rollup(name: str, keys: tuple[Column[Any], ...], measures: tuple[Column[Any], ...]) -> Table:
    """A rollup: one row per combination of `keys` present in the base table, kept exact by the
    statement-level triggers of migrations 0006 and 0012 (so national figures never scan the
    records). Each summed measure keeps its sum of squares and each cell the sum of its records'
    keys: what the cell-key method needs, additive like the sums themselves.

    NULL is a key value like any other (NULLS NOT DISTINCT), so upserts find cells for records
    without a founding year; the partial index finds the cells that fell to zero and are deleted.
    """
    return Table(
        name,
        Base.metadata,
        *keys,
        Column("n", BigInteger, nullable=False),
        *measures,
        Column("cell_key_sum", BigInteger, nullable=False),
        UniqueConstraint(
            *(key.name for key in keys), name=f"uq_{name}", postgresql_nulls_not_distinct=True
        ),
        Index(f"ix_{name}_empty", "n", postgresql_where=text("n = 0")),
    )


def _msme_rollup(name: str, *keys: Column[Any]) -> Table:
    """MSME measures may be NULL, so each sum travels with its count of non-NULL values."""
    sums: tuple[tuple[str, type[Numeric[Any]] | type[BigInteger]], ...] = (
        ("turnover", Numeric),
        ("capital", Numeric),
        ("employees", BigInteger),
    )
    measures = tuple(
        column
        for measure, kind in sums
        for column in (
            Column(f"{measure}_n", BigInteger, nullable=False),
            Column(f"{measure}_sum", kind, nullable=False),
        )
    )
    squares = tuple(Column(f"{measure}_squares", Numeric, nullable=False) for measure, _ in sums)
    return _rollup(name, keys, measures + squares)


def _cooperative_rollup(name: str, *keys: Column[Any]) -> Table:
    measures = (
        Column("business_volume_sum", Numeric, nullable=False),
        Column("assets_sum", Numeric, nullable=False),
        Column("members_sum", BigInteger, nullable=False),
        Column("business_volume_squares", Numeric, nullable=False),
        Column("assets_squares", Numeric, nullable=False),
        Column("members_squares", Numeric, nullable=False),
    )
    return _rollup(name, keys, measures)


def _province() -> Column[str]:
    return Column("province_code", String(13), nullable=False)


def _regency() -> Column[str]:
    return Column("regency_code", String(13), nullable=False)


def _scale() -> Column[str]:
    return Column("scale", String(6), nullable=False)


def _active() -> Column[bool]:
    return Column("is_active", Boolean, nullable=False)


def _kbli_section() -> Column[str]:
    return Column("kbli_section", String(1), nullable=False)


MSME_ROLLUP_REGENCY = _msme_rollup(
    "msme_rollup_regency", _province(), _regency(), _scale(), _active()
)
MSME_ROLLUP_PROVINCE_KBLI = _msme_rollup(
    "msme_rollup_province_kbli", _province(), _scale(), _kbli_section(), _active()
)
MSME_ROLLUP_PROVINCE_YEAR = _msme_rollup(
    "msme_rollup_province_year",
    _province(),
    _scale(),
    _active(),
    Column("established_year", Integer, nullable=True),
)
MSME_ROLLUP_REGENCY_KBLI = _msme_rollup(
    "msme_rollup_regency_kbli", _province(), _regency(), _scale(), _kbli_section(), _active()
)


def _cooperative_keys() -> tuple[Column[Any], ...]:
    return (
        Column("type", String(15), nullable=False),
        Column("status", String(10), nullable=False),
        Column("book_year", SmallInteger, nullable=True),
    )


COOPERATIVE_ROLLUP_PROVINCE = _cooperative_rollup(
    "cooperative_rollup_province", _province(), *_cooperative_keys()
)
COOPERATIVE_ROLLUP_REGENCY = _cooperative_rollup(
    "cooperative_rollup_regency", _province(), _regency(), *_cooperative_keys()
)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as a Table (SQLAlchemy types it a FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
