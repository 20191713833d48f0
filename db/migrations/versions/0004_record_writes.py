"""Record writes: the change history of every record, and a version on participations.

`field_change` is how the set-based bulk import writes "what changed" for one column: an object
{field: {before, after}} when the values differ, else an empty one; a row's changes are these
objects concatenated. Single-record writes build the same shape in Python. It is STABLE, like
jsonb_build_object, so PostgreSQL inlines it (an IMMUTABLE label would prevent that).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHANGE = """
CREATE FUNCTION field_change(field text, before anyelement, after anyelement) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN before IS DISTINCT FROM after
                THEN jsonb_build_object(field, jsonb_build_object('before', before, 'after', after))
                ELSE '{}'::jsonb END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "record_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("record_kind", sa.String(length=15), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("operation", sa.String(length=15), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "personal_fields", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
        sa.CheckConstraint(
            "record_kind IN ('msme', 'cooperative', 'participation')",
            name=op.f("ck_record_changes_record_kind"),
        ),
        sa.CheckConstraint(
            "operation IN ('create', 'update', 'deactivate', 'scale', 'import')",
            name=op.f("ck_record_changes_operation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_changes")),
    )
    op.create_index(
        "ix_record_changes_record", "record_changes", ["record_kind", "record_id", "id"]
    )
    op.add_column(
        "participations",
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
    )
    op.execute(CHANGE)


def downgrade() -> None:
    op.execute("DROP FUNCTION field_change(text, anyelement, anyelement)")
    op.drop_column("participations", "version")
    op.drop_index("ix_record_changes_record", table_name="record_changes")
    op.drop_table("record_changes")
