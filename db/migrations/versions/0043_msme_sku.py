"""An MSME may be registered by Surat Keterangan Usaha instead of, or before, a NIB.

Most micro businesses have no NIB, and KUR takes a NIB or an SKU issued by the desa/kelurahan
(docs/domain.md). `msmes` gains `sku_number` (as domain/identifiers.py `validate_sku_number`
spells it: trimmed, spaces collapsed, upper-case) and `sku_issuer` (the issuing village's
Kemendagri code), unique together, and every record must have a NIB or an SKU, or both.

The regions table stops at kecamatan, so the village itself cannot be a foreign key: its code is
held to its shape (PP.KK.CC.DDDD, DDDD from 1 kelurahan, 2 desa, 3 desa adat) and to the
record's place (its regency, and its kecamatan when the record has one).

`nib` was nullable from the start, but no write path stored a record without one (the API, the
import and the demo data all require it). Should a record without a NIB be stored anyway (by
hand, or restored from elsewhere), the migration changes nothing and stops, naming each, and the
owner gives it its NIB, or deletes it, and migrates again:

    UPDATE msmes SET nib = '…' WHERE id = …;

Revision ID: 0043
Revises: 0042
"""

import sqlalchemy as sa
from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

SHOWN = 50
"""How many records without a NIB the refusal lists."""
SKU_NUMBER_MAX = 80
"""domain/identifiers.py SKU_NUMBER_MAX as this migration made the column."""
CHECKS = {
    "nib_or_sku": "nib IS NOT NULL OR sku_number IS NOT NULL",
    "sku_whole": "(sku_number IS NULL) = (sku_issuer IS NULL)",
    "sku_number_canonical": "sku_number ~ '^[!-~]+( [!-~]+)*$' AND sku_number !~ '[a-z]'",
    "sku_issuer_place": (
        r"sku_issuer ~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[1-3][0-9]{3}$'"
        " AND left(sku_issuer, 5) = regency_code"
        " AND (district_code IS NULL OR left(sku_issuer, 8) = district_code)"
    ),
}


def _without_nib(connection: sa.Connection) -> str | None:
    """The refusal, naming every record that has no NIB."""
    ids = connection.execute(sa.text("SELECT id FROM msmes WHERE nib IS NULL ORDER BY id")).all()
    if not ids:
        return None
    shown = ", ".join(str(row.id) for row in ids[:SHOWN])
    if len(ids) > SHOWN:
        shown += f" … and {len(ids) - SHOWN} more"
    return (
        f"migration 0043 changed nothing: {len(ids)} MSME record(s) have no NIB, and every "
        f"record must now have a NIB or an SKU: msmes {shown}; give each its NIB "
        "(UPDATE msmes SET nib = '…' WHERE id = …) or delete it, then migrate again"
    )


def upgrade() -> None:
    refusal = _without_nib(op.get_bind())
    if refusal is not None:
        raise RuntimeError(refusal)
    op.add_column("msmes", sa.Column("sku_number", sa.String(SKU_NUMBER_MAX)))
    op.add_column("msmes", sa.Column("sku_issuer", sa.String(13)))
    for name, condition in CHECKS.items():
        op.create_check_constraint(op.f(f"ck_msmes_{name}"), "msmes", condition)
    op.create_unique_constraint(op.f("uq_msmes_sku_issuer"), "msmes", ["sku_issuer", "sku_number"])


def downgrade() -> None:
    """Refused while a record is registered by SKU alone: dropping its SKU would leave a
    business no one can name, and a check of it unanswerable."""
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM msmes WHERE nib IS NULL ORDER BY id")).all()
    if ids:
        shown = ", ".join(str(row.id) for row in ids[:SHOWN])
        raise RuntimeError(
            f"cannot downgrade below 0043: {len(ids)} MSME record(s) have an SKU and no NIB"
            f" (msmes {shown}); give each its NIB or delete it first"
        )
    op.drop_constraint(op.f("uq_msmes_sku_issuer"), "msmes", type_="unique")
    for name in CHECKS:
        op.drop_constraint(op.f(f"ck_msmes_{name}"), "msmes", type_="check")
    op.drop_column("msmes", "sku_issuer")
    op.drop_column("msmes", "sku_number")
