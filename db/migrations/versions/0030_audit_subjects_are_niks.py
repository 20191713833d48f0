"""The trail refuses an entry whose subjects are not a flat list of values: a NULL, or an array
of arrays.

`subjects` is a `text[]`, and PostgreSQL stores a NULL element, or a two-dimensional array, in
it. `audit_log_hash()` hashes the subjects as `array_to_string`, which drops NULLs and flattens
(so `{A,NULL}` hashes like `{A}`), and so the chain took such an entry; the custodian's reads
then failed on it: a NULL is no NIK to sort among the others or to name as a data subject, and
the whole page was answered INTERNAL. One INSERT by whoever holds the service's credentials was
enough. The chain trigger now refuses such an entry before it takes its place (SQLSTATE 23514),
as it refuses an entry its readers cannot read (migration 0024).

An entry stored before this migration, or by the owner with the triggers off, is read with its
NULLs left out (db/queries/audit.py), and `sinergi audit verify` names it.

The function is replaced whole, so its settings are stated again: its fixed `search_path`
(migration 0010) and the index lookup of the latest entry (migration 0019).

Revision ID: 0030
Revises: 0029
"""

from alembic import op

revision = "0030"
down_revision = "0029"
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
    -- Apart: array_position cannot search an array of arrays.
    IF array_ndims(NEW.subjects) > 1 THEN
        RAISE EXCEPTION 'audit entry refused: subjects must be a list, not an array of arrays'
            USING ERRCODE = 'check_violation';
    END IF;
    IF array_position(NEW.subjects, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'audit entry refused: a subject is NULL'
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

OLD_CHAIN = f"""
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


def upgrade() -> None:
    op.execute(CHAIN)


def downgrade() -> None:
    op.execute(OLD_CHAIN)
