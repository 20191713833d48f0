"""MSME places checked by two composite foreign keys instead of three single ones.

A bulk import of 100,000 MSMEs spends most of its time in PostgreSQL's per-row foreign-key
checks (one lookup per key per row). The regency key now names its province and the kecamatan
key its regency, both against `regions (code, parent_code)`: one check proves the regency exists
*and* lies in the stated province, which also proves the province exists, so the separate
province key goes. The rules are stronger than before (a place's parts must agree in `regions`,
not only in their digits) and an import pays one lookup per row fewer.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_unique_constraint("uq_regions_code", "regions", ["code", "parent_code"])
    for column in ("province_code", "regency_code", "district_code"):
        op.drop_constraint(f"fk_msmes_{column}_regions", "msmes", type_="foreignkey")
    op.create_foreign_key(
        "fk_msmes_regency_code_regions",
        "msmes",
        "regions",
        ["regency_code", "province_code"],
        ["code", "parent_code"],
    )
    op.create_foreign_key(
        "fk_msmes_district_code_regions",
        "msmes",
        "regions",
        ["district_code", "regency_code"],
        ["code", "parent_code"],
    )


def downgrade() -> None:
    for column in ("regency_code", "district_code"):
        op.drop_constraint(f"fk_msmes_{column}_regions", "msmes", type_="foreignkey")
    for column in ("province_code", "regency_code", "district_code"):
        op.create_foreign_key(f"fk_msmes_{column}_regions", "msmes", "regions", [column], ["code"])
    op.drop_constraint("uq_regions_code", "regions", type_="unique")
