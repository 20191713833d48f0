"""Append-only, hash-chained audit log; per-client request counters for rate limits.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHAIN = """
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    -- One writer at a time, so each entry links to the one committed before it.
    PERFORM pg_advisory_xact_lock(hashtext('sinergi.audit_log'));
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '');
    NEW.hash := audit_log_hash(NEW.prev_hash, NEW.seq, NEW.at, NEW.client_id, NEW.entry, NEW.subjects);
    RETURN NEW;
END $$;
"""

HASH = """
CREATE FUNCTION audit_log_hash(prev text, seq bigint, at timestamptz, client text, entry jsonb,
                               subjects text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        concat_ws('|', prev, seq::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                  client, entry::text, array_to_string(subjects, ',')),
        'UTF8')), 'hex')
$$;
"""

REFUSE = """
CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("entry", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("subjects", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_log_seq")),
    )
    op.create_index(op.f("ix_audit_log_client_id"), "audit_log", ["client_id"])
    op.execute("CREATE INDEX ix_audit_log_subjects ON audit_log USING gin (subjects)")
    op.execute(HASH)
    op.execute(CHAIN)
    op.execute(REFUSE)
    op.execute(
        "CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_chain()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()"
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC")
    # Counters are worth nothing after a crash, so skip the WAL: UNLOGGED.
    op.execute(
        "CREATE UNLOGGED TABLE rate_limit_windows ("
        " client_id text NOT NULL, window_start timestamptz NOT NULL, hits integer NOT NULL,"
        " CONSTRAINT pk_rate_limit_windows PRIMARY KEY (client_id, window_start))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE rate_limit_windows")
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION audit_log_chain(), audit_log_refuse()")
    op.execute("DROP FUNCTION audit_log_hash(text, bigint, timestamptz, text, jsonb, text[])")
