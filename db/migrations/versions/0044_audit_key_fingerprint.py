"""The audit key's fingerprint: which key this database's trail is sealed with, from the start.

`serve` checked its key against the trail's first seal, which does not exist until something is
written and sealed: a new deployment stays unsealed for a while, and two instances with
separate SINERGI_HOMEs each made a key of their own and both served, the change feed's cursors
of one refused by the other, and once one had sealed, the other logged a broken seal every
round and `audit verify` with its key cried tampering. So the first `serve` with a key records
an HMAC, under the key, of the trail's id (migration 0041) here, and every `serve` after it
refuses a key that does not reproduce it (sinergi/audit_key.py). The key never enters the
database; its fingerprint tells nothing of it.

One row, written once: the service holds SELECT only (db/roles.py) and records it through
`record_audit_key_fingerprint`, the owner's, which takes the table's lock and writes only when
none is there, returning what is; a trigger refuses to change or remove it, so whoever holds
the service's credentials cannot swap in another key's (only, before any server did, record one
first, which stops every `serve`; the README's audit section says how the owner resets it).

Revision ID: 0044
Revises: 0043
"""

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

REFUSE = """
CREATE FUNCTION audit_key_fingerprint_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_key_fingerprint is written once: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

RECORD = f"""
CREATE FUNCTION record_audit_key_fingerprint(new_fingerprint text)
RETURNS text LANGUAGE plpgsql {DEFINER} AS $$
DECLARE
    recorded text;
BEGIN
    -- Against another instance starting with another key: the first to take it records.
    LOCK TABLE public.audit_key_fingerprint IN SHARE ROW EXCLUSIVE MODE;
    SELECT f.fingerprint INTO recorded FROM public.audit_key_fingerprint f;
    IF recorded IS NULL THEN
        INSERT INTO public.audit_key_fingerprint (fingerprint) VALUES (new_fingerprint);
        recorded := new_fingerprint;
    END IF;
    RETURN recorded;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_key_fingerprint",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint("singleton", name=op.f("ck_audit_key_fingerprint_one_row")),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_audit_key_fingerprint")),
    )
    op.execute(REFUSE)
    op.execute(
        "CREATE TRIGGER audit_key_fingerprint_written_once BEFORE UPDATE OR DELETE"
        " ON audit_key_fingerprint FOR EACH ROW EXECUTE FUNCTION audit_key_fingerprint_refuse()"
    )
    op.execute(
        "CREATE TRIGGER audit_key_fingerprint_no_truncate BEFORE TRUNCATE"
        " ON audit_key_fingerprint"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_key_fingerprint_refuse()"
    )
    op.execute(RECORD)
    # db/roles.py grants the service EXECUTE; nobody else holds it.
    op.execute("REVOKE EXECUTE ON FUNCTION record_audit_key_fingerprint(text) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION record_audit_key_fingerprint(text)")
    op.drop_table("audit_key_fingerprint")
    op.execute("DROP FUNCTION audit_key_fingerprint_refuse()")
