"""An audit entry is checked and chained by one trigger, not three: the same checks, less CPU.

Every request that hands out records or personal data writes an entry, and each entry ran
three plpgsql BEFORE INSERT row triggers: the size bound (0053), the chain (0002, its checks
from 0024 and 0030) and the refusal of an entry without a MAC (0051). Each call of a trigger
function pays for itself whatever its body does: the trigger's call, its own `search_path`
set and restored, its plpgsql frame and its copy of the row; and the entry was turned into text
twice, for the bound and for the hash. Measured on a migrated database (5,000 entries shaped as
a lookup's, written as the service writes them, variants alternating, the backend's CPU from
/proc/<pid>/schedstat), one function doing the same work costs 18 to 24 µs of PostgreSQL CPU
less per entry, of some 160 to 380 (one entry to a statement, or fifty); folded but still
calling `audit_log_hash()`, which turns the entry into text again, 13 to 22.

`audit_log_chain()` now does all of it, in the order the triggers fired (by name: bounded,
chain, signed), with the same messages and SQLSTATEs: the size bound before the chain's lock
is taken, the MAC's check once the entry has its place (it refuses only from 0051's boundary
on). The hash is `audit_log_hash()`'s expression, evaluated in place on the entry's text: the
same hash, bit for bit, which `audit verify` recomputes with that function, so entries written
before and after this migration are chained and verified alike (tests/test_migrations.py),
and an entry chained otherwise fails verification as any rewritten entry does. The function
and its trigger keep their names and their owner (the migration's role), so the service's
role can neither drop, disable nor replace them (tests/test_roles.py). The owner disabling
the trigger now skips every check along with the chain: an entry written so is chained by
hand, as the owner's other rewrites are.

A downgrade puts back the three triggers as they were.

Revision ID: 0061
Revises: 0060
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0061"
down_revision = "0060"
branch_labels = None
depends_on = None


M0030 = migration("0030_audit_subjects_are_niks.py")
M0051 = migration("0051_audit_entry_macs.py")
M0053 = migration("0053_audit_entries_stay_small.py")

MAX_ENTRY_BYTES = M0053.MAX_ENTRY_BYTES
MAX_DEPTH = M0030.MAX_DEPTH

CHAIN = f"""
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp SET enable_seqscan = off AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    entry_text text := NEW.entry::text;
BEGIN
    -- 0053's bound, before the chain's lock is taken.
    IF octet_length(entry_text) + octet_length(NEW.subjects::text) > {MAX_ENTRY_BYTES} THEN
        RAISE EXCEPTION 'audit entry refused: its entry and subjects come to more than'
            ' {MAX_ENTRY_BYTES} bytes' USING ERRCODE = 'check_violation';
    END IF;
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
    -- audit_log_hash(), its entry as text once: the same expression, the same hash.
    NEW.hash := encode(sha256(convert_to(
        concat_ws('|', NEW.prev_hash, NEW.seq::text,
                  to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
                  NEW.client_id, entry_text, array_to_string(NEW.subjects, ',')),
        'UTF8')), 'hex');
    -- 0051's, once the entry has its place: from the boundary on, only.
    IF (NEW.entry_mac IS NULL OR NEW.entry_nonce IS NULL)
            AND NEW.seq >= (SELECT from_seq FROM public.audit_entry_macs) THEN
        RAISE EXCEPTION 'audit entry refused: it carries no MAC; an instance of a release older'
            ' than migration 0051 is still running: stop it (README, Upgrading)'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
"""

FOLDED = {
    "audit_log_bounded": "audit_log_refuse_oversized",
    "audit_log_signed": "audit_log_refuse_unsigned",
}
"""The triggers folded into the chain's, and their functions."""


def upgrade() -> None:
    for trigger, function in FOLDED.items():
        op.execute(f"DROP TRIGGER {trigger} ON audit_log")
        op.execute(f"DROP FUNCTION {function}()")
    op.execute(CHAIN)


def downgrade() -> None:
    op.execute(M0030.CHAIN)
    op.execute(M0053.BOUNDED)
    op.execute(M0051.UNSIGNED)
    for trigger, function in FOLDED.items():
        op.execute(
            f"CREATE TRIGGER {trigger} BEFORE INSERT ON audit_log"
            f" FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
