"""The trail refuses an entry its readers could not read: one INSERT would otherwise stop sealing.

PostgreSQL stores any JSON number, however large, and nesting as deep as its stack allows;
orjson, which reads the entries back (db/engine.py), refuses a number beyond a double's range
and nesting past 1,024 levels. One such entry, inserted by whoever holds the service's
credentials, was chained like any other, and then every sealing round failed on it (an outage,
not tampering, to the logs and metrics), `sinergi audit verify` died naming no entry, and the
trail, append-only, could not be repaired. The chain trigger now refuses such an entry before it
takes its place (SQLSTATE 23514): numbers beyond the largest double, or any value nested deeper
than 32 levels (the entries Sinergi writes, `AccessPolicy.audit_entry`, nest three).

Entries stored before this migration, or by the owner with the triggers off, are read as
`db.seals.Unreadable` rather than fail the statement that reads them; sealing seals past them
and `audit verify` names them.

The function is replaced whole, so its settings are stated again: its fixed `search_path`
(migration 0010) and the index lookup of the latest entry (migration 0019).

Revision ID: 0024
Revises: 0023
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

MAX_DEPTH = 32

CHAIN = f"""
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp SET enable_seqscan = off AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    IF jsonb_path_exists(NEW.entry, 'strict $.** ? (@.type() == "number" &&
            (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308))') THEN
        RAISE EXCEPTION 'audit entry refused: a number beyond the range of a double'
            USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_path_exists(NEW.entry, 'strict $.**{{{MAX_DEPTH + 1} to last}}') THEN
        RAISE EXCEPTION 'audit entry refused: nested deeper than {MAX_DEPTH} levels'
            USING ERRCODE = 'check_violation';
    END IF;
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
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp SET enable_seqscan = off AS $$
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


def upgrade() -> None:
    op.execute(CHAIN)


def downgrade() -> None:
    op.execute(OLD_CHAIN)
