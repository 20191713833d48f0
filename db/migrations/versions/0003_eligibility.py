"""Eligibility decisions with their facts and rule-set versions; guarantors and guarantees.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eligibility_rulesets",
        sa.Column("product", sa.String(length=60), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("product", "version", name=op.f("pk_eligibility_rulesets")),
    )
    op.create_table(
        "guarantors",
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("equity", sa.BigInteger(), nullable=False),
        sa.Column(
            "gearing_limit", sa.Numeric(precision=6, scale=2), server_default="20", nullable=False
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("equity > 0 AND gearing_limit > 0", name=op.f("ck_guarantors_positive")),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_guarantors")),
    )
    op.create_table(
        "eligibility_decisions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("msme_id", sa.BigInteger(), nullable=True),
        sa.Column("cooperative_id", sa.BigInteger(), nullable=True),
        sa.Column("subject_key", sa.Text(), nullable=False),
        sa.Column("province_code", sa.String(length=13), nullable=False),
        sa.Column("regency_code", sa.String(length=13), nullable=False),
        sa.Column("loan_amount", sa.BigInteger(), nullable=False),
        sa.Column("tenor_months", sa.SmallInteger(), nullable=False),
        sa.Column("product", sa.String(length=60), nullable=False),
        sa.Column("ruleset_version", sa.String(length=40), nullable=False),
        sa.Column("check_date", sa.Date(), nullable=False),
        sa.Column("facts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("verdict", sa.String(length=12), nullable=False),
        sa.Column("results", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("coverage_amount", sa.BigInteger(), nullable=False),
        sa.Column("estimated_fee", sa.BigInteger(), nullable=True),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("reviewed_verdict", sa.String(length=12), nullable=True),
        sa.Column("reviewer", sa.Text(), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by_client", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "reviewed_verdict IS NULL OR reviewed_verdict IN ('ELIGIBLE', 'NOT_ELIGIBLE')",
            name=op.f("ck_eligibility_decisions_reviewed_verdict"),
        ),
        sa.CheckConstraint(
            "verdict IN ('ELIGIBLE', 'NOT_ELIGIBLE', 'NEEDS_REVIEW')",
            name=op.f("ck_eligibility_decisions_verdict"),
        ),
        sa.CheckConstraint(
            "(msme_id IS NULL) <> (cooperative_id IS NULL)",
            name=op.f("ck_eligibility_decisions_exactly_one_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["cooperative_id"],
            ["cooperatives.id"],
            name=op.f("fk_eligibility_decisions_cooperative_id_cooperatives"),
        ),
        sa.ForeignKeyConstraint(
            ["msme_id"], ["msmes.id"], name=op.f("fk_eligibility_decisions_msme_id_msmes")
        ),
        sa.ForeignKeyConstraint(
            ["province_code"],
            ["regions.code"],
            name=op.f("fk_eligibility_decisions_province_code_regions"),
        ),
        sa.ForeignKeyConstraint(
            ["regency_code"],
            ["regions.code"],
            name=op.f("fk_eligibility_decisions_regency_code_regions"),
        ),
        sa.ForeignKeyConstraint(
            ["product", "ruleset_version"],
            ["eligibility_rulesets.product", "eligibility_rulesets.version"],
            name=op.f("fk_eligibility_decisions_product_eligibility_rulesets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eligibility_decisions")),
    )
    op.create_index(
        "ix_eligibility_decisions_cooperative_id",
        "eligibility_decisions",
        ["cooperative_id"],
        unique=False,
    )
    op.create_index(
        "ix_eligibility_decisions_msme_id", "eligibility_decisions", ["msme_id"], unique=False
    )
    op.create_table(
        "guarantees",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("guarantor_client_id", sa.String(length=200), nullable=False),
        sa.Column("msme_id", sa.BigInteger(), nullable=True),
        sa.Column("cooperative_id", sa.BigInteger(), nullable=True),
        sa.Column("province_code", sa.String(length=13), nullable=False),
        sa.Column("regency_code", sa.String(length=13), nullable=False),
        sa.Column("bank", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("coverage_amount", sa.BigInteger(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="active", nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'claimed', 'paid_off', 'defaulted')",
            name=op.f("ck_guarantees_status"),
        ),
        sa.CheckConstraint(
            "amount > 0 AND coverage_amount > 0 AND coverage_amount <= amount",
            name=op.f("ck_guarantees_amounts"),
        ),
        sa.CheckConstraint("ends_on > starts_on", name=op.f("ck_guarantees_period")),
        sa.CheckConstraint(
            "province_code = left(regency_code, 2)", name=op.f("ck_guarantees_province_of_regency")
        ),
        sa.ForeignKeyConstraint(
            ["cooperative_id"],
            ["cooperatives.id"],
            name=op.f("fk_guarantees_cooperative_id_cooperatives"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["eligibility_decisions.id"],
            name=op.f("fk_guarantees_decision_id_eligibility_decisions"),
        ),
        sa.ForeignKeyConstraint(
            ["msme_id"], ["msmes.id"], name=op.f("fk_guarantees_msme_id_msmes")
        ),
        sa.ForeignKeyConstraint(
            ["province_code"], ["regions.code"], name=op.f("fk_guarantees_province_code_regions")
        ),
        sa.ForeignKeyConstraint(
            ["regency_code"], ["regions.code"], name=op.f("fk_guarantees_regency_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantees")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_guarantees_decision_id")),
    )
    op.create_index(
        op.f("ix_guarantees_cooperative_id"), "guarantees", ["cooperative_id"], unique=False
    )
    op.create_index(
        "ix_guarantees_guarantor_status",
        "guarantees",
        ["guarantor_client_id", "status"],
        unique=False,
    )
    op.create_index(op.f("ix_guarantees_msme_id"), "guarantees", ["msme_id"], unique=False)
    op.create_index("ix_guarantees_province_code", "guarantees", ["province_code"], unique=False)
    op.create_table(
        "guarantee_status_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("guarantee_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=10), nullable=True),
        sa.Column("to_status", sa.String(length=10), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "to_status IN ('active', 'claimed', 'paid_off', 'defaulted')",
            name=op.f("ck_guarantee_status_changes_to_status"),
        ),
        sa.ForeignKeyConstraint(
            ["guarantee_id"],
            ["guarantees.id"],
            name=op.f("fk_guarantee_status_changes_guarantee_id_guarantees"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guarantee_status_changes")),
    )
    op.create_index(
        op.f("ix_guarantee_status_changes_guarantee_id"),
        "guarantee_status_changes",
        ["guarantee_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_guarantee_status_changes_guarantee_id"), table_name="guarantee_status_changes"
    )
    op.drop_table("guarantee_status_changes")
    op.drop_index("ix_guarantees_province_code", table_name="guarantees")
    op.drop_index(op.f("ix_guarantees_msme_id"), table_name="guarantees")
    op.drop_index("ix_guarantees_guarantor_status", table_name="guarantees")
    op.drop_index(op.f("ix_guarantees_cooperative_id"), table_name="guarantees")
    op.drop_table("guarantees")
    op.drop_index("ix_eligibility_decisions_msme_id", table_name="eligibility_decisions")
    op.drop_index("ix_eligibility_decisions_cooperative_id", table_name="eligibility_decisions")
    op.drop_table("eligibility_decisions")
    op.drop_table("guarantors")
    op.drop_table("eligibility_rulesets")
