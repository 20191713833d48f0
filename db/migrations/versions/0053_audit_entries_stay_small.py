"""Audit entries stay small: a read of the trail names positions, and no entry exceeds 1 MiB.

A read of the trail (`auditEntries`) named as its data subjects every NIK of every entry it
returned. A custodian's dashboard polling the newest entries got back its own previous read
among them, and copied its subjects into the next: after 30 rounds of an agency reading 200
owners and the custodian reading 5 entries, each of the custodian's entries named 6,000 NIKs,
and they grew on without end. A read's entry now names the positions of the entries it returned
(`positions`, in the entry: hashed, sealed and signed with it) and the person it asked about;
`personalDataAccess(nik)` finds the reads that handed out a person's NIK by following those
positions to the entries naming them (db/queries/audit.py). The index finds, for an entry, the
reads that returned it; it holds only the entries of such reads.

The service's role may insert entries, of any size: eight of 40 MB (their MACs garbage) made
the sealer's statement, which reads 250 entries at a time, outlast the statement timeout on
every round, and sealing stopped for good. A trigger now refuses an entry whose `entry` and
`subjects`, as text, come to more than 1 MiB (SQLSTATE 23514), before the chain's lock is
taken (BEFORE triggers fire in name order, and `audit_log_bounded` comes before
`audit_log_chain`). What Sinergi writes stays far below it: the service splits an entry naming
more than 20,000 people into parts (db/queries/audit.py `SUBJECTS_PER_ENTRY`: some 340 KB of
NIKs), a read's positions are at most a page, and the rest of an entry is a few KB. The
migration's role owns the trigger, so the service's role can neither drop, disable nor replace
it. An entry stored before this migration is left as it was; the sealer reads entries a few MiB
at a time (db/queries/audit_seals.py), so even one of those is sealed in a statement of its own
(measuring only the entries it takes: as first written, it measured all 250 entries after the
last seal in full for each partition, and sixteen of 40 MB still outlasted the statement timeout).

Revision ID: 0053
Revises: 0052
"""

from alembic import op

revision = "0053"
down_revision = "0052"
branch_labels = None
depends_on = None

MAX_ENTRY_BYTES = 1_048_576
"""As db/queries/audit_seals.py `MAX_ENTRY_BYTES` says it: the bound as of this migration."""

BOUNDED = f"""
CREATE FUNCTION audit_log_refuse_oversized() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF octet_length(NEW.entry::text) + octet_length(NEW.subjects::text) > {MAX_ENTRY_BYTES} THEN
        RAISE EXCEPTION 'audit entry refused: its entry and subjects come to more than'
            ' {MAX_ENTRY_BYTES} bytes' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_audit_log_positions ON audit_log"
        " USING gin ((entry -> 'positions') jsonb_path_ops) WHERE entry ? 'positions'"
    )
    op.execute(BOUNDED)
    # Before `audit_log_chain` in name order: refused before the chain's lock is taken.
    op.execute(
        "CREATE TRIGGER audit_log_bounded BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_oversized()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_bounded ON audit_log")
    op.execute("DROP FUNCTION audit_log_refuse_oversized()")
    op.execute("DROP INDEX ix_audit_log_positions")
