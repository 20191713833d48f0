"""An audit trail the service cannot rewrite: keyed seals, a hardened chain, nothing for PUBLIC.

The service now runs as a role of its own that owns nothing; what it may do to each table is
declared once in `db/roles.py` and granted after every upgrade (`db.migrate.upgrade`). Here:

- PUBLIC loses every privilege on the tables and sequences, and CREATE on the schema (the
  default before PostgreSQL 15), so a role is granted exactly what `db/roles.py` declares;
- the chain trigger names its tables schema-qualified under a fixed `search_path`: a temporary
  table called `audit_log` in the writer's session cannot feed it a forged predecessor, and the
  time of an entry is the database's clock, whatever the writer sent;
- `audit_seals` holds each entry's keyed MAC, written in batches by the service with a key the
  database never sees (db/queries/audit_seals.py), append-only like the log itself.

A downgrade refuses while `audit_seals` holds a seal (none could be made again as it was), and
leaves CREATE on the schema taken from PUBLIC (see `downgrade`).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHAIN = """
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    -- One writer at a time, so each entry links to the one committed before it.
    PERFORM pg_advisory_xact_lock(hashtext('sinergi.audit_log'));
    SELECT seq, hash INTO last_seq, last_hash FROM public.audit_log ORDER BY seq DESC LIMIT 1;
    NEW.at := clock_timestamp();
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '');
    NEW.hash := public.audit_log_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.client_id, NEW.entry,
                                      NEW.subjects);
    RETURN NEW;
END $$;
"""

OLD_CHAIN = """
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sinergi.audit_log'));
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '');
    NEW.hash := audit_log_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.client_id, NEW.entry, NEW.subjects);
    RETURN NEW;
END $$;
"""


REFUSE = """
CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

OLD_REFUSE = """
CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC")
    op.execute(REFUSE)
    op.execute(CHAIN)
    op.create_table(
        "audit_seals",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column(
            "sealed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_seals")),
    )
    op.execute("REVOKE ALL ON audit_seals FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER audit_seals_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_seals "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse()"
    )
    op.execute(
        "CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()"
    )


def downgrade() -> None:
    # A seal is a MAC made when its entry was written, under a key the database never sees: one
    # dropped cannot be made again as it was, and the trail would lose its proof that no entry
    # was rewritten since. A database that holds any stays at this revision.
    op.execute(
        "DO $$ DECLARE sealed bigint; BEGIN"
        " SELECT count(*) INTO sealed FROM audit_seals;"
        " IF sealed > 0 THEN RAISE EXCEPTION 'audit_seals holds % seal(s), each the keyed proof"
        " that its entry was not rewritten since it was written; dropping them loses that proof"
        " for good: cannot downgrade', sealed; END IF; END $$"
    )
    op.execute("DROP TABLE audit_seals")
    op.execute(OLD_CHAIN)
    op.execute(OLD_REFUSE)
    # CREATE on `public` stays taken from PUBLIC. PUBLIC held it only by the default of
    # PostgreSQL before 15 (from 15 on it never had it, so granting it would add what was never
    # there); no revision needs any role but the owner to create in `public`; and giving it
    # back would let the service, and every other role, create objects there again: functions
    # and tables that shadow the schema's own on its search path.
