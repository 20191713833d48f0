"""The tables, declared once for Alembic and for the queries in `db/queries/`.

Enumerations are text columns with CHECK constraints rather than PostgreSQL enum types: a new
cooperative type or programme kind is then a one-line migration instead of an enum rewrite.

Every business row carries `province_code` and `regency_code` as real columns (checked against
each other) because jurisdiction filters, partitioning by province and the national rollups all
key on them; deriving them per query from a district code would defeat the indexes.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


def _region_consistency() -> tuple[CheckConstraint, ...]:
    """The three region columns must describe one place, so a row cannot drift between them."""
    return (
        CheckConstraint("province_code = left(regency_code, 2)", name="province_of_regency"),
        CheckConstraint(
            "district_code IS NULL OR left(district_code, 5) = regency_code",
            name="regency_of_district",
        ),
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Region(Base):
    __tablename__ = "regions"
    __table_args__ = (CheckConstraint(_one_of("level", REGION_LEVELS), name="level"),)

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
    last_rat_date: Mapped[date | None] = mapped_column(Date)
    last_rat_book_year: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(10), server_default="active")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Msme(Base):
    __tablename__ = "msmes"
    __table_args__ = (
        CheckConstraint(_one_of("scale", SCALES), name="scale"),
        CheckConstraint(
            "capital >= 0 AND annual_turnover >= 0 AND employees >= 0", name="non_negative"
        ),
        CheckConstraint("nib ~ '^[0-9]{13}$'", name="nib_format"),
        *_region_consistency(),
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
    province_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    regency_code: Mapped[str] = mapped_column(ForeignKey("regions.code"))
    district_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))
    established_on: Mapped[date | None] = mapped_column(Date)
    capital: Mapped[int | None] = mapped_column(BigInteger)
    annual_turnover: Mapped[int | None] = mapped_column(BigInteger)
    turnover_year: Mapped[int | None] = mapped_column(SmallInteger)
    employees: Mapped[int | None] = mapped_column(Integer)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MsmeOwner(Base):
    """The owner's personal data (UU 27/2022), apart so record queries never read this table."""

    __tablename__ = "msme_owners"
    __table_args__ = (
        CheckConstraint("nik ~ '^[0-9]{16}$'", name="nik_format"),
        CheckConstraint("sex IN ('F', 'M')", name="sex"),
    )

    msme_id: Mapped[int] = mapped_column(
        ForeignKey("msmes.id", ondelete="CASCADE"), primary_key=True
    )
    nik: Mapped[str] = mapped_column(String(16), index=True)
    full_name: Mapped[str] = mapped_column(Text)
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)


class MsmeScaleHistory(Base):
    """Effective-dated scale, one row per change, so graduations ("naik kelas") can be counted."""

    __tablename__ = "msme_scale_history"
    __table_args__ = (
        CheckConstraint(_one_of("scale", SCALES), name="scale"),
        UniqueConstraint("msme_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    msme_id: Mapped[int] = mapped_column(ForeignKey("msmes.id", ondelete="CASCADE"), index=True)
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
    programme_id: Mapped[str] = mapped_column(ForeignKey("programmes.id"), index=True)
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


class SigningKey(Base):
    """Token-signing keys; retired keys stay published until every token they signed expired."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk: Mapped[dict[str, str]] = mapped_column(JSONB)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as a Table (SQLAlchemy types it a FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
