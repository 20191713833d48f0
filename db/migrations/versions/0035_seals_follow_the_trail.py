"""A seal is taken only for an audit entry that exists, and only as the next after the newest.

The service's role may insert seals (the sealer does, as that role: db/queries/audit_seals.py),
and the table took any sequence number. An insider holding those credentials could write a seal
for an entry not yet written, say 20 while the trail stood at 8: `sinergi audit verify` walked
the entries and never met it, and said the chain was intact; once the trail reached 20 the
sealer found that entry's seal was not its own and stopped sealing for good (seals are
append-only, so nothing could remove it), and `verify` then blamed entries 17 to 19 for their
missing seals rather than the seal planted ahead of them.

A trigger now refuses (SQLSTATE 23514) a seal whose entry is not in `audit_log`, or that is not
exactly the next after the newest seal: seals grow one entry at a time, in order, behind the
trail, as the sealer writes them. A seal written for the next entry with a MAC the key does not
reproduce is still taken (the database never holds the key); the sealer stops at it and
`verify` names its entry, as before.

The trigger runs once for each statement, after its rows are stored, over the seals it added
(a transition table): they must be one run of consecutive entries, starting right after the
newest seal before them, with no seal beyond them, and each an entry of `audit_log`. The
sealer's batch, one statement of up to 5,000 seals in order, costs two lookups by primary key
(the seals either side of the run) and one range of `audit_log`'s primary key, not lookups for
each row. It takes no lock: two writers of the same next seal meet on its primary key, and one
fails; a writer that saw an older newest seal writes a seal that exists. Its queries name their tables schema-qualified under a fixed `search_path`, as the
chain trigger's do (migration 0010).

A database already holding a seal of no entry keeps it (the table is append-only): the sealer
stops there and says so, and `verify` names it (db/queries/audit.py).

Revision ID: 0035
Revises: 0034
"""

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

FOLLOW = """
CREATE FUNCTION audit_seals_follow() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp SET enable_seqscan = off AS $$
DECLARE
    first_seq bigint;
    last_seq bigint;
    added bigint;
    before bigint;
    beyond bigint;
    missing bigint;
BEGIN
    SELECT min(seq), max(seq), count(*) INTO first_seq, last_seq, added FROM added_seals;
    IF added = 0 THEN
        RETURN NULL;
    END IF;
    SELECT seq INTO before FROM public.audit_seals WHERE seq < first_seq ORDER BY seq DESC LIMIT 1;
    SELECT seq INTO beyond FROM public.audit_seals WHERE seq > last_seq ORDER BY seq DESC LIMIT 1;
    -- The primary key makes the seals distinct: as many as their span, they leave no gap.
    IF first_seq <> coalesce(before, 0) + 1 OR last_seq - first_seq + 1 <> added
       OR beyond IS NOT NULL THEN
        RAISE EXCEPTION 'seal of audit entry % refused: the next seal is of entry %, and seals '
                        'follow it one entry at a time', first_seq,
                        coalesce(beyond, before, 0) + 1
            USING ERRCODE = 'check_violation';
    END IF;
    IF (SELECT count(*) FROM public.audit_log WHERE seq BETWEEN first_seq AND last_seq)
       <> added THEN
        SELECT min(seq) INTO missing FROM added_seals AS seal
         WHERE NOT EXISTS (SELECT FROM public.audit_log AS log WHERE log.seq = seal.seq);
        RAISE EXCEPTION 'seal of audit entry % refused: there is no such entry', missing
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(FOLLOW)
    op.execute(
        "CREATE TRIGGER audit_seals_follow AFTER INSERT ON audit_seals"
        " REFERENCING NEW TABLE AS added_seals"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_seals_follow()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_seals_follow ON audit_seals")
    op.execute("DROP FUNCTION audit_seals_follow()")
