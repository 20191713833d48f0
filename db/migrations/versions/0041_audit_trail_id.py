"""The audit trail's identity: a random id made once, which checkpoints name.

`audit verify` counted a checkpoint only for a database of the same name, so a dump of the trail
restored under another name, its newest entries missing, passed as intact: every checkpoint
naming the original was set aside. The id is stored in the database, so a dump, a restore or a
`CREATE DATABASE … TEMPLATE` copy carries it, and the checkpoints of the trail it was cut from
apply to it whatever the database is called. One row, owned by the owner; the service may only
read it (db/roles.py), and a trigger refuses to change or remove it.

Revision ID: 0041
Revises: 0040
"""

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None

REFUSE = """
CREATE FUNCTION audit_trail_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is written once: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "audit_trail",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.CheckConstraint("singleton", name=op.f("ck_audit_trail_one_row")),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_audit_trail")),
    )
    op.execute("INSERT INTO audit_trail DEFAULT VALUES")
    op.execute(REFUSE)
    op.execute(
        "CREATE TRIGGER audit_trail_written_once BEFORE UPDATE OR DELETE ON audit_trail "
        "FOR EACH ROW EXECUTE FUNCTION audit_trail_refuse()"
    )
    op.execute(
        "CREATE TRIGGER audit_trail_no_truncate BEFORE TRUNCATE ON audit_trail "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_refuse()"
    )


def downgrade() -> None:
    op.drop_table("audit_trail")
    op.execute("DROP FUNCTION audit_trail_refuse()")
