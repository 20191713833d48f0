"""The tables, declared once for Alembic and for the queries in `db/queries/`.

Plain Core `Table`s in one `METADATA`: nothing maps rows to objects, and declaring the same
tables as ORM classes cost every command about 30 ms of start-up for a mapping nobody used.

Enumerations are text columns with CHECK constraints rather than PostgreSQL enum types: a new
cooperative type or programme kind is then a one-line migration instead of an enum rewrite.

Every business row carries `province_code` and `regency_code` as real columns (checked against
each other) because jurisdiction filters, partitioning by province and the national rollups all
key on them; deriving them per query from a district code would defeat the indexes.
"""

from __future__ import annotations

from datetime import date
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
from sqlalchemy.types import TypeEngine

from domain.identifiers import SKU_NUMBER_MAX
from domain.participations import ParticipationStatus
from domain.personal import OWNER_FIELDS
from domain.programmes import ProgrammeKind, ProgrammeSubjects
from domain.ruleset import KSP_HEALTH, PRODUCT_MAX, VERSION_MAX

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
PRINCIPAL_ID_LENGTH = 200
"""The longest client id kept with an eligibility decision, a guarantee and a guarantor's
equity (those columns' length): an external principal whose id would be longer is refused when
its token is read (auth.external), not by the first statement that stores it."""


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


def _sku_rules() -> tuple[CheckConstraint, ...]:
    """An MSME is registered by NIB or SKU, or both (KUR takes either). The SKU is whole, its
    number spelled as `validate_sku_number` spells it (so the unique key is per number), and its
    issuer a village code in the record's regency, and kecamatan when it has one: the regions
    table stops at kecamatan, so the village itself is held to its shape and its place."""
    return (
        CheckConstraint("nib IS NOT NULL OR sku_number IS NOT NULL", name="nib_or_sku"),
        CheckConstraint("(sku_number IS NULL) = (sku_issuer IS NULL)", name="sku_whole"),
        CheckConstraint(
            "sku_number ~ '^[!-~]+( [!-~]+)*$' AND sku_number !~ '[a-z]'",
            name="sku_number_canonical",
        ),
        CheckConstraint(
            r"sku_issuer ~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[1-3][0-9]{3}$'"
            " AND left(sku_issuer, 5) = regency_code"
            " AND (district_code IS NULL OR left(sku_issuer, 8) = district_code)",
            name="sku_issuer_place",
        ),
    )


METADATA = MetaData(naming_convention=NAMING_CONVENTION)
"""Every table below; what Alembic compares the migrations with."""


# 32 random bits from PostgreSQL's strong random source: the first 8 hex digits of a version 4
# UUID are all random (its fixed version bits come later).
RECORD_KEY = "('x' || left(gen_random_uuid()::text, 8))::bit(32)::bigint"


def _record_key() -> Column[int]:
    """A record's permanent secret key for the cell-key method (domain/cellkey.py): drawn once
    by the database when the row is made, never written by a client, never published, and not
    part of the change history (which holds only what a client changed)."""
    return Column("cell_key", BigInteger, nullable=False, server_default=text(RECORD_KEY))


REGIONS = Table(
    "regions",
    METADATA,
    Column("code", String(13), primary_key=True),
    Column("level", String(10), nullable=False),
    Column("name", Text, nullable=False),
    Column("parent_code", ForeignKey("regions.code"), index=True),
    CheckConstraint(_one_of("level", REGION_LEVELS), name="level"),
    # What places refer to: a code together with its parent (see MSMES' keys).
    UniqueConstraint("code", "parent_code"),
)

KBLI_SECTIONS = Table(
    "kbli_sections",
    METADATA,
    Column("section", String(1), primary_key=True),
    Column("title", Text, nullable=False),
    Column("first_division", SmallInteger, nullable=False),
    Column("last_division", SmallInteger, nullable=False),
)

KBLI_CODES = Table(
    "kbli_codes",
    METADATA,
    Column("code", String(5), primary_key=True),
    Column("version", String(4), nullable=False),
    Column("title", Text, nullable=False),
)

AGENCIES = Table(
    "agencies",
    METADATA,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("org_kind", String(20), nullable=False),
    Column("jurisdiction", ForeignKey("regions.code"), nullable=False),
)

COOPERATIVES = Table(
    "cooperatives",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("legal_entity_no", Text, nullable=False, unique=True),
    Column("ods_no", Text),
    Column("name", Text, nullable=False),
    Column("tier", String(10), nullable=False, server_default="primary"),
    Column("type", String(15), nullable=False),
    Column("province_code", ForeignKey("regions.code"), nullable=False),
    Column("regency_code", ForeignKey("regions.code"), nullable=False),
    Column("district_code", ForeignKey("regions.code")),
    Column("kbli_code", String(5)),
    Column("members_male", Integer, nullable=False, server_default="0"),
    Column("members_female", Integer, nullable=False, server_default="0"),
    Column("business_volume", BigInteger, nullable=False, server_default="0"),
    Column("assets", BigInteger, nullable=False, server_default="0"),
    Column("surplus", BigInteger),
    Column("book_year", SmallInteger),
    Column("established_on", Date),
    Column("last_rat_date", Date),
    Column("last_rat_book_year", SmallInteger),
    Column("status", String(10), nullable=False, server_default="active"),
    # The savings-and-loan health rating (R11) and the book year it assesses (migration 0038).
    Column("ksp_health", String(12)),
    Column("ksp_health_book_year", SmallInteger),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _record_key(),
    CheckConstraint(_one_of("type", COOPERATIVE_TYPES), name="type"),
    CheckConstraint(_one_of("status", COOPERATIVE_STATUSES), name="status"),
    CheckConstraint(_one_of("ksp_health", KSP_HEALTH), name="ksp_health"),
    CheckConstraint(
        "(ksp_health IS NULL) = (ksp_health_book_year IS NULL)", name="ksp_health_book_year"
    ),
    CheckConstraint("tier IN ('primary', 'secondary')", name="tier"),
    # A Kemenkumham number is stored in its one spelling (domain/identifiers.py), so the UNIQUE
    # above is per number, not per spelling (0034).
    CheckConstraint(
        r"legal_entity_no !~* '^\s*AHU-[0-9]+\.AH\.01\.26\.TAHUN\s+[0-9]{4}\s*$'"
        r" OR legal_entity_no ~ '^AHU-([0-9]{7}|[1-9][0-9]{7,})\.AH\.01\.26\.TAHUN [0-9]{4}$'",
        name="legal_entity_no_canonical",
    ),
    CheckConstraint(
        "members_male >= 0 AND members_female >= 0 AND business_volume >= 0 AND assets >= 0",
        name="non_negative",
    ),
    *_region_consistency(),
    Index("ix_cooperatives_province_type_status", "province_code", "type", "status"),
    Index("ix_cooperatives_regency_code", "regency_code"),
)

LEGAL_ENTITY_NO_FOLDED = "uq_cooperatives_legal_entity_no_folded"
"""An older dinas number, kept as typed, is registered once in any case: `518/bh/xiv/1999` is
`518/BH/XIV/1999` (migration 0048). A Kemenkumham number has one, upper-case, spelling."""
Index(LEGAL_ENTITY_NO_FOLDED, func.lower(COOPERATIVES.c.legal_entity_no), unique=True)

MSMES = Table(
    "msmes",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("nib", String(13), unique=True),
    # A Surat Keterangan Usaha instead of (or before) a NIB: its number in its one spelling and
    # the desa/kelurahan that issued it, by code (migration 0043).
    Column("sku_number", String(SKU_NUMBER_MAX)),
    Column("sku_issuer", String(13)),
    Column("name", Text, nullable=False),
    Column("kbli_code", String(5), nullable=False),
    Column("kbli_section", ForeignKey("kbli_sections.section"), nullable=False),
    # PP 7/2021 from the figures (domain/scale.py registered_scale); the declared one apart
    # (migration 0037).
    Column("scale", String(6), nullable=False),
    Column("declared_scale", String(6)),
    Column("province_code", String(13), nullable=False),
    Column("regency_code", String(13), nullable=False),
    Column("district_code", String(13)),
    Column("established_on", Date),
    Column("capital", BigInteger),
    Column("annual_turnover", BigInteger),
    Column("turnover_year", SmallInteger),
    Column("employees", Integer),
    Column("cooperative_id", ForeignKey("cooperatives.id")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _record_key(),
    CheckConstraint(_one_of("scale", SCALES), name="scale"),
    CheckConstraint(_one_of("declared_scale", SCALES), name="declared_scale"),
    CheckConstraint(
        "capital >= 0 AND annual_turnover >= 0 AND employees >= 0", name="non_negative"
    ),
    CheckConstraint("nib ~ '^[0-9]{13}$'", name="nib_format"),
    *_sku_rules(),
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
    # One SKU per number and village, as domain/identifiers.py spells the number; what a
    # check by SKU looks up.
    UniqueConstraint("sku_issuer", "sku_number"),
)

DEMO_MSMES = Table(
    "demo_msmes",
    METADATA,
    Column("msme_id", ForeignKey("msmes.id", ondelete="CASCADE"), primary_key=True),
)
"""The MSMEs `sinergi demo-data` loaded (migration 0046): the only ones it deletes on a reload.
The owner's alone (the service holds nothing on it, db/roles.py): neither a client nor whoever
holds the service's credentials can make a real record count as demo. A NIB in the demo's range
proves nothing, since OSS draws NIBs at random."""

DEMO_COOPERATIVES = Table(
    "demo_cooperatives",
    METADATA,
    Column("cooperative_id", ForeignKey("cooperatives.id", ondelete="CASCADE"), primary_key=True),
)
"""The cooperatives `sinergi demo-data` loaded, as `DEMO_MSMES` lists its MSMEs."""

OWNER_STORAGE: dict[str, TypeEngine[Any]] = {"nik": String(16), "sex": String(1)}
"""Personal columns stored otherwise than their kind says (text, or a date for a date)."""
OWNER_INDEXED = frozenset({"nik"})
"""Personal columns with an index: an owner is found by NIK."""


def _personal_columns() -> tuple[Column[Any], ...]:
    """One column per declared personal field (domain.records.OwnerDraft); the migration that
    adds a field adds its column."""
    return tuple(
        Column(
            field.column,
            OWNER_STORAGE.get(field.column, Date() if field.kind is date else Text()),
            nullable=not field.required,
            index=field.column in OWNER_INDEXED,
        )
        for field in OWNER_FIELDS
    )


MSME_OWNERS = Table(
    "msme_owners",
    METADATA,
    Column("msme_id", ForeignKey("msmes.id", ondelete="CASCADE"), primary_key=True),
    *_personal_columns(),
    CheckConstraint("nik ~ '^[0-9]{16}$'", name="nik_format"),
    CheckConstraint("sex IN ('F', 'M')", name="sex"),
)
"""The owner's personal data (UU 27/2022), apart so record queries never read this table."""

MSME_SCALE_HISTORY = Table(
    "msme_scale_history",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # Indexed by the unique constraint, whose first column it is.
    Column("msme_id", ForeignKey("msmes.id", ondelete="CASCADE"), nullable=False),
    Column("scale", String(6), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("annual_sales", BigInteger),
    Column("capital", BigInteger),
    Column("rule_version", String(20), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The year `annual_sales` were made: a graduation counts in it (migration 0055). Null where
    # it is not known (no sales, none given, entries from before 0055): their effective year.
    Column("turnover_year", SmallInteger),
    # The owner on record when the row was written (empty: none), whose figures it holds, named
    # by a read of them whoever owns the business later; NULL before migration 0062.
    Column("owner_niks", ARRAY(OWNER_STORAGE["nik"])),
    CheckConstraint(_one_of("scale", SCALES), name="scale"),
    UniqueConstraint("msme_id", "effective_from"),
)
"""Effective-dated scale, one row per change, so graduations ("naik kelas") can be counted."""

PROGRAMMES = Table(
    "programmes",
    METADATA,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("owner_agency_id", ForeignKey("agencies.id")),
    Column("legal_basis", Text),
    Column("jurisdiction", ForeignKey("regions.code"), nullable=False),
    Column("starts_on", Date),
    # Whom it takes in: a participation of the other kind is refused (migration 0047).
    Column("subjects", String(11), nullable=False, server_default=ProgrammeSubjects.BOTH.value),
    # R12 reads the kind: one it does not know must not be stored (migration 0045).
    CheckConstraint(_one_of("kind", tuple(ProgrammeKind)), name="kind"),
    CheckConstraint(_one_of("subjects", tuple(ProgrammeSubjects)), name="subjects"),
)

PARTICIPATIONS = Table(
    "participations",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # Indexed with the id: a programme's participants are its first rows (migration 0020).
    Column("programme_id", ForeignKey("programmes.id"), nullable=False),
    Column("msme_id", ForeignKey("msmes.id", ondelete="CASCADE"), index=True),
    Column("cooperative_id", ForeignKey("cooperatives.id", ondelete="CASCADE"), index=True),
    Column("role", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", Text),
    Column("started_on", Date),
    Column("version", Integer, nullable=False, server_default="1"),
    CheckConstraint("(msme_id IS NULL) <> (cooperative_id IS NULL)", name="exactly_one_subject"),
    CheckConstraint(_one_of("status", tuple(ParticipationStatus)), name="status"),
    Index("ix_participations_programme_id_id", "programme_id", "id"),
)
PARTICIPATION_ROLE = func.lower(PARTICIPATIONS.c.role)
"""A role as a business holds it once per programme: "Supplier" is "supplier". The role is
stored as given; only its key is folded (migration 0042)."""
# One subject column is always NULL: with NULLs distinct the key never matched (0026).
Index(
    "uq_participations_role",
    PARTICIPATIONS.c.programme_id,
    PARTICIPATIONS.c.msme_id,
    PARTICIPATIONS.c.cooperative_id,
    PARTICIPATION_ROLE,
    unique=True,
    postgresql_nulls_not_distinct=True,
)


RECORD_KINDS = ("msme", "cooperative", "participation")
CHANGE_OPERATIONS = ("create", "update", "deactivate", "scale", "import")

RECORD_CHANGES = Table(
    "record_changes",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
    Column("client_id", Text, nullable=False),
    Column("organisation", Text, nullable=False),
    Column("record_kind", String(15), nullable=False),
    Column("record_id", BigInteger, nullable=False),
    Column("operation", String(15), nullable=False),
    Column("version", Integer, nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("personal_fields", ARRAY(Text), nullable=False, server_default="{}"),
    # An MSME's: the owners whose figures the change holds (migration 0062), named by a read of
    # them whoever owns the business later; NULL before that migration, and for other records.
    Column("owner_niks", ARRAY(OWNER_STORAGE["nik"])),
    CheckConstraint(_one_of("record_kind", RECORD_KINDS), name="record_kind"),
    CheckConstraint(_one_of("operation", CHANGE_OPERATIONS), name="operation"),
    Index("ix_record_changes_record", "record_kind", "record_id", "id"),
)
"""Who changed which record, when and how, written in the transaction of the change.

`changes` maps each changed column to {"before": …, "after": …}; personal data never enters
it (the history is readable with records:read alone), only the names of the personal fields
that changed, in `personal_fields`.
"""

MSME_IMPORT_BATCHES = Table(
    "msme_import_batches",
    METADATA,
    # From record_changes' sequence, so the entry sorts with the records' later changes.
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
    Column("client_id", Text, nullable=False),
    Column("organisation", Text, nullable=False),
    Column("first_id", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    # The records' first scale entry (migration 0016), read through the view `scale_history`;
    # empty for batches of imports that still wrote it as rows.
    Column("effective_from", Date),
    Column("rule_version", String(20)),
    CheckConstraint("first_id <= last_id", name="ids"),
    Index("uq_msme_import_batches_first_id", "first_id", unique=True),
)
"""The history entry of a run of records an import created, ids `first_id` to `last_id`
(migration 0015): read per record through the view `record_history`; and their first scale
entry (migration 0016), through the view `scale_history`."""

INDICATORS = Table(
    "indicators",
    METADATA,
    Column("code", String(40), primary_key=True),
    Column("name_id", Text, nullable=False),
    Column("name_en", Text, nullable=False),
    Column("unit", String(20), nullable=False),
    Column("higher_is_better", Boolean, nullable=False),
    Column("computable_from_records", Boolean, nullable=False),
)

TARGETS = Table(
    "targets",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("indicator_code", ForeignKey("indicators.code"), nullable=False),
    Column("jurisdiction", ForeignKey("regions.code"), nullable=False),
    Column("year", SmallInteger, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("value", Numeric, nullable=False),
    Column("qualifier", String(20)),
    Column("year_inferred", Boolean, nullable=False, server_default=text("false")),
    Column("source", Text, nullable=False),
    CheckConstraint("kind IN ('baseline', 'target')", name="kind"),
    UniqueConstraint("indicator_code", "jurisdiction", "year", "kind"),
)

REALISATIONS = Table(
    "realisations",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("indicator_code", ForeignKey("indicators.code"), nullable=False),
    Column("jurisdiction", ForeignKey("regions.code"), nullable=False),
    Column("year", SmallInteger, nullable=False),
    Column("value", Numeric, nullable=False),
    Column("qualifier", String(20)),
    Column("source", Text, nullable=False),
    Column("reported_on", Date),
    Column("reported_by", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_realisations_lookup", "indicator_code", "jurisdiction", "year", "recorded_at"),
)
"""Reported values; rows are only ever added, so the history of reports is kept."""

OAUTH_CLIENTS = Table(
    "oauth_clients",
    METADATA,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("org_kind", String(20), nullable=False),
    Column("jurisdiction", ForeignKey("regions.code"), nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
)

TRUSTED_DOCUMENTS = Table(
    "trusted_documents",
    METADATA,
    Column("client_id", String(PRINCIPAL_ID_LENGTH), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("name", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
)
"""An operation a client is registered to run; in trusted-documents mode, the only kind. The
client is a registered one or an SSO's principal (auth.external.external_client_id), which is
registered nowhere: no foreign key to oauth_clients, and the length of a principal's id."""

SIGNING_KEY_SHAPE = """coalesce(
    jsonb_typeof(public_jwk) = 'object'
    AND public_jwk ->> 'kty' = 'EC' AND public_jwk ->> 'crv' = 'P-256'
    AND jsonb_typeof(public_jwk -> 'x') = 'string' AND jsonb_typeof(public_jwk -> 'y') = 'string'
    AND public_jwk ->> 'kid' = kid AND NOT public_jwk ? 'd', false) AND coalesce(
    CASE WHEN private_jwk = '{}' THEN retired_at IS NOT NULL
    ELSE jsonb_typeof(private_jwk) = 'object'
         AND private_jwk ->> 'kty' = 'EC' AND private_jwk ->> 'crv' = 'P-256'
         AND private_jwk -> 'x' = public_jwk -> 'x' AND private_jwk -> 'y' = public_jwk -> 'y'
         AND jsonb_typeof(private_jwk -> 'd') = 'string' END, false)"""
"""A row is an ES256 key of its kid: the public half, and the private one (`{}` once retired)."""

SIGNING_KEYS = Table(
    "signing_keys",
    METADATA,
    Column("kid", String(64), primary_key=True),
    Column("private_jwk", JSONB, nullable=False),
    Column("public_jwk", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("retired_at", DateTime(timezone=True)),
    CheckConstraint(SIGNING_KEY_SHAPE, name="jwk"),  # migration 0036
)
"""Token-signing keys; retired keys stay published until every token they signed expired, their
private half erased (auth/keys.py `rotate`)."""

PREPARATION = Table(
    "preparation",
    METADATA,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("fingerprint", Text, nullable=False),
    Column("revisions", ARRAY(Text), nullable=False),
    Column("prepared_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("singleton", name="one_row"),
)
"""What the database was last prepared for (migration 0018, db/preparation.py): one row."""

FIGURE_RELEASES = Table(
    "figure_releases",
    METADATA,
    Column("only_row", Boolean, primary_key=True, server_default=text("true")),
    Column("number", BigInteger, nullable=False, server_default="0"),
    Column("released_at", DateTime(timezone=True)),
    Column("schema_name", Text),
    CheckConstraint("only_row", name="one_row"),
    CheckConstraint("schema_name IN ('figures_a', 'figures_b')", name="schema_name"),
)
"""Which figure release perturbed figures read (migration 0031, db/releases.py): one row, no
schema named until the first release."""

AUDIT_LOG = Table(
    "audit_log",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
    Column("client_id", Text, nullable=False, index=True),
    Column("entry", JSONB, nullable=False),
    Column("subjects", ARRAY(Text), nullable=False, server_default="{}"),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Column("entry_mac", Text),
    Column("entry_nonce", Text, unique=True),
    # Migration 0052 (NOT VALID: rows stored before stay as they were, the trail append-only).
    CheckConstraint("entry_mac ~ '^[0-9a-f]{64}$'", name="entry_mac_shape"),
    CheckConstraint("entry_nonce ~ '^[0-9a-f]{32}$'", name="entry_nonce_shape"),
)
"""Who received records or personal data, written before the response leaves (UU 27/2022).

Append-only and hash-chained by triggers in migration 0002: `seq`, `prev_hash` and `hash`
are set by the database under a lock, so no client can fork or rewrite the chain. `entry_mac`
and `entry_nonce` (migration 0051) are the service's: an HMAC under the audit key, which the
database never holds, of the entry's content and a random nonce, so an entry inserted with the
database's credentials alone is told from one the service wrote (db/seals.py `entry_mac`).
"""

AUDIT_ENTRY_MACS = Table(
    "audit_entry_macs",
    METADATA,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("from_seq", BigInteger, nullable=False),
    CheckConstraint("singleton", name="one_row"),
)
"""The first entry that must carry a MAC, recorded once by migration 0051: those before it were
written before the service made MACs."""

AUDIT_TRAIL = Table(
    "audit_trail",
    METADATA,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("id", Uuid, nullable=False, server_default=text("gen_random_uuid()")),
    CheckConstraint("singleton", name="one_row"),
)
"""The trail's identity, one row made by migration 0041, which every checkpoint names."""

AUDIT_KEY_FINGERPRINT = Table(
    "audit_key_fingerprint",
    METADATA,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("fingerprint", Text, nullable=False),
    Column(
        "recorded_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.clock_timestamp(),
    ),
    CheckConstraint("singleton", name="one_row"),
)
"""Which key seals the trail, recorded once by the first `serve` (migration 0044)."""

AUDIT_SEALS = Table(
    "audit_seals",
    METADATA,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("mac", Text, nullable=False),
    Column(
        "sealed_at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()
    ),
    CheckConstraint("mac ~ '^[0-9a-f]{64}$'", name="mac_shape"),  # migration 0052
)
"""An audit entry's keyed MAC, chained over the entries before it (migration 0010).

Written in batches by the service with a key the database never holds, so whoever can
rewrite `audit_log` and recompute its hashes still cannot make the seals agree.
"""


GUARANTEE_STATUSES = ("active", "claimed", "paid_off", "defaulted")
VERDICTS = ("ELIGIBLE", "NOT_ELIGIBLE", "NEEDS_REVIEW")

ELIGIBILITY_RULESETS = Table(
    "eligibility_rulesets",
    METADATA,
    Column("product", String(PRODUCT_MAX), primary_key=True),
    Column("version", String(VERSION_MAX), primary_key=True),
    Column("effective_from", Date, nullable=False),
    Column("document", JSONB, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Every rule-set version ever used, verbatim, so any stored decision can be replayed."""

ELIGIBILITY_DECISIONS = Table(
    "eligibility_decisions",
    METADATA,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("client_id", String(PRINCIPAL_ID_LENGTH), nullable=False),
    Column("organisation", Text, nullable=False),
    Column("msme_id", ForeignKey("msmes.id")),
    Column("cooperative_id", ForeignKey("cooperatives.id")),
    Column("subject_key", Text, nullable=False),
    Column("province_code", ForeignKey("regions.code"), nullable=False),
    Column("regency_code", ForeignKey("regions.code"), nullable=False),
    Column("loan_amount", BigInteger, nullable=False),
    Column("tenor_months", SmallInteger, nullable=False),
    Column("product", String(PRODUCT_MAX), nullable=False),
    Column("ruleset_version", String(VERSION_MAX), nullable=False),
    Column("check_date", Date, nullable=False),
    Column("facts", JSONB, nullable=False),
    Column("verdict", String(12), nullable=False),
    Column("results", JSONB, nullable=False),
    Column("coverage_amount", BigInteger, nullable=False),
    Column("estimated_fee", BigInteger),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("reviewed_verdict", String(12)),
    Column("reviewer", Text),
    Column("review_reason", Text),
    Column("reviewed_by_client", String(PRINCIPAL_ID_LENGTH)),
    Column("reviewed_at", DateTime(timezone=True)),
    # The owner of an MSME on the day of its check, the natural person the decision is about:
    # the data subject of every audit entry of the decision and of a guarantee resting on it,
    # whoever owns the business later, and after its owner is erased (migration 0049). Never a
    # GraphQL field; none but the service and the owner read the table.
    Column("subject_nik", OWNER_STORAGE["nik"]),
    CheckConstraint(_one_of("verdict", VERDICTS), name="verdict"),
    CheckConstraint(
        "reviewed_verdict IS NULL OR reviewed_verdict IN ('ELIGIBLE', 'NOT_ELIGIBLE')",
        name="reviewed_verdict",
    ),
    CheckConstraint("(msme_id IS NULL) <> (cooperative_id IS NULL)", name="exactly_one_subject"),
    CheckConstraint("subject_nik IS NULL OR msme_id IS NOT NULL", name="subject_is_a_person"),
    ForeignKeyConstraint(
        ["product", "ruleset_version"],
        ["eligibility_rulesets.product", "eligibility_rulesets.version"],
    ),
    Index("ix_eligibility_decisions_msme_id", "msme_id"),
    Index("ix_eligibility_decisions_cooperative_id", "cooperative_id"),
)
"""A decision with the facts it was made on, and a person's review where one was needed."""

GUARANTORS = Table(
    "guarantors",
    METADATA,
    Column("client_id", String(PRINCIPAL_ID_LENGTH), primary_key=True),
    Column("equity", BigInteger, nullable=False),
    Column("gearing_limit", Numeric(6, 2), nullable=False, server_default="20"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("equity > 0 AND gearing_limit > 0", name="positive"),
)
"""A guarantee company's equity, against which its gearing limit (POJK 2/2017) is checked."""

GUARANTEES = Table(
    "guarantees",
    METADATA,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("decision_id", ForeignKey("eligibility_decisions.id"), nullable=False, unique=True),
    Column("guarantor_client_id", String(PRINCIPAL_ID_LENGTH), nullable=False),
    Column("msme_id", ForeignKey("msmes.id"), index=True),
    Column("cooperative_id", ForeignKey("cooperatives.id"), index=True),
    Column("province_code", ForeignKey("regions.code"), nullable=False),
    Column("regency_code", ForeignKey("regions.code"), nullable=False),
    Column("bank", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("coverage_amount", BigInteger, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("status", String(10), nullable=False, server_default="active"),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _record_key(),
    CheckConstraint(_one_of("status", GUARANTEE_STATUSES), name="status"),
    CheckConstraint(
        "amount > 0 AND coverage_amount > 0 AND coverage_amount <= amount", name="amounts"
    ),
    CheckConstraint("ends_on > starts_on", name="period"),
    _province_of_regency(),
    Index("ix_guarantees_guarantor_status", "guarantor_client_id", "status"),
    Index("ix_guarantees_province_code", "province_code"),
)
"""A guarantee a BUMD issued on an eligible decision; region columns feed the figures."""

GUARANTEE_STATUS_CHANGES = Table(
    "guarantee_status_changes",
    METADATA,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("guarantee_id", ForeignKey("guarantees.id"), nullable=False, index=True),
    Column("from_status", String(10)),
    Column("to_status", String(10), nullable=False),
    Column("effective_on", Date, nullable=False),
    Column("note", Text),
    Column("changed_by", String(PRINCIPAL_ID_LENGTH), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("to_status", GUARANTEE_STATUSES), name="to_status"),
)
"""The status history of a guarantee: who said it changed, when it took effect, and why."""


def _rollup(name: str, keys: tuple[Column[Any], ...], measures: tuple[Column[Any], ...]) -> Table:
    """A rollup: one row per combination of `keys` present in the base table, kept exact by the
    statement-level triggers of migrations 0006, 0012, 0016 and 0050 (so national figures never
    scan the records). Each summed measure keeps its sum of squares and the sum of its
    contributors' keys (records whose value is neither missing nor zero), and each cell the sum
    of its records' keys: what the cell-key method needs, additive like the sums themselves.

    NULL is a key value like any other (NULLS NOT DISTINCT), so upserts find cells for records
    without a founding year; the partial index finds the cells that fell to zero and are deleted.
    """
    return Table(
        name,
        METADATA,
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
    """MSME measures may be NULL, so each sum travels with its count of non-NULL values and
    their key sum (what an average's divisor is keyed on)."""
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
    keyed = tuple(
        Column(f"{measure}_{column}", BigInteger, nullable=False)
        for measure, _ in sums
        for column in ("key_sum", "valued_key_sum")
    )
    return _rollup(name, keys, measures + squares + keyed)


def _cooperative_rollup(name: str, *keys: Column[Any]) -> Table:
    measures = (
        Column("business_volume_sum", Numeric, nullable=False),
        Column("assets_sum", Numeric, nullable=False),
        Column("members_sum", BigInteger, nullable=False),
        Column("business_volume_squares", Numeric, nullable=False),
        Column("assets_squares", Numeric, nullable=False),
        Column("members_squares", Numeric, nullable=False),
        Column("business_volume_key_sum", BigInteger, nullable=False),
        Column("assets_key_sum", BigInteger, nullable=False),
        Column("members_key_sum", BigInteger, nullable=False),
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
