"""New MSMEs wait for their change-feed entries as runs of ids, one note per run, not per record.

The feed's INSERT trigger on `msmes` (0014) noted each new record in `change_pending`, and the
commit trigger read the notes back, numbered them into `change_log` and deleted them: for a bulk
import, three passes over a row per record, about a sixth of the import's time in PostgreSQL.

A statement's new records now wait as runs: one note per run of consecutive ids that lie in the
same place, its first id in `record_id` and its last in the new `last_record_id` (null for a
note of one record, as every other note is). The commit trigger expands each run back into one
entry per id, in id order, where the note stood among the transaction's notes. Everything an
entry says of a creation (the record, where it was created, that nothing was before) is the
same for every id of a run, and the entries numbered are exactly those the per-record notes
gave, in the same order: `change_log`, and so the feed, does not change at all. Nothing can ask
the trigger to skip a record, so no role gains a way to write one without its entry; the notes
stay out of reach of every role but the owner's functions (0014, 0028).

Revision ID: 0032
Revises: 0031
"""

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

ENTRY = (
    "record_kind, record_id, operation, deactivated, personal, old_province, old_regency, "
    "old_district, new_province, new_regency, new_district, owner_client_id"
)
"""An entry's columns as 0014 made them."""
WITH_PLACES = (
    f"{ENTRY}, cooperative_old_province, cooperative_old_regency, cooperative_old_district, "
    "cooperative_new_province, cooperative_new_regency, cooperative_new_district"
)
"""With the cooperative's places (0027): what the commit trigger moves."""

NOTE_TRANSACTION = """
    GET DIAGNOSTICS logged = ROW_COUNT;
    IF logged > 0 THEN
        INSERT INTO change_pending_transactions (xid) VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    END IF;"""

# A run is a set of consecutive ids in one place: within a place, ids minus their rank are
# constant along a run and change at each gap. Nulls (no district) partition and group together.
RUNS = """
    INSERT INTO change_pending (record_kind, record_id, operation, deactivated, personal,
                                old_province, old_regency, old_district, new_province,
                                new_regency, new_district, owner_client_id, last_record_id)
    SELECT 'msme', min(id)::text, 'insert', false, false, NULL, NULL, NULL,
           province_code, regency_code, district_code, NULL, nullif(max(id), min(id))
      FROM (SELECT n.id, n.province_code, n.regency_code, n.district_code,
                   n.id - row_number() OVER (PARTITION BY n.province_code, n.regency_code,
                                                          n.district_code
                                             ORDER BY n.id) AS run
              FROM new_rows n) AS numbered
     GROUP BY province_code, regency_code, district_code, run
     ORDER BY min(id);"""

EACH = f"""
    INSERT INTO change_pending ({ENTRY})
    SELECT 'msme', n.id::text, 'insert', false, false, NULL, NULL, NULL,
           n.province_code, n.regency_code, n.district_code, NULL
      FROM new_rows n ORDER BY n.id;"""
"""0014's note of each new record."""


def _insert_trigger(body: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION msmes_change_log_insert() RETURNS trigger LANGUAGE plpgsql
{DEFINER} AS $$
DECLARE
    logged bigint;
BEGIN{body}{NOTE_TRANSACTION}
    RETURN NULL;
END $$;
"""


def _commit(pending: str) -> str:
    """0014's commit trigger, numbering the entries `pending` gives, in order."""
    return f"""
CREATE OR REPLACE FUNCTION change_pending_commit() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
    -- Held until this transaction's commit is visible: entries are numbered in that order.
    PERFORM pg_advisory_xact_lock(hashtext('sinergi.change_feed'));
    INSERT INTO change_log (id, {WITH_PLACES})
    SELECT nextval('change_log_id_seq'), {WITH_PLACES}
      FROM ({pending}) AS pending;
    DELETE FROM change_pending WHERE xid = NEW.xid;
    DELETE FROM change_pending_transactions WHERE xid = NEW.xid;
    PERFORM pg_notify('sinergi_changes', '');
    RETURN NULL;
END $$;
"""


_EXPANDED_COLUMNS = ", ".join(
    "coalesce(r.id::text, p.record_id) AS record_id" if column == "record_id" else f"p.{column}"
    for column in WITH_PLACES.split(", ")
)
EXPANDED = f"""SELECT {_EXPANDED_COLUMNS}
              FROM change_pending p
                   LEFT JOIN LATERAL generate_series(
                       CASE WHEN p.last_record_id IS NOT NULL THEN p.record_id::bigint END,
                       p.last_record_id) AS r (id) ON true
             WHERE p.xid = NEW.xid
             ORDER BY p.pending_id, r.id"""
"""Each note, a run expanded into one entry per id."""
NOTES = "SELECT * FROM change_pending WHERE xid = NEW.xid ORDER BY pending_id"
"""0014's: each note is one entry."""


def upgrade() -> None:
    op.execute("ALTER TABLE change_pending ADD COLUMN last_record_id bigint")
    op.execute(_commit(EXPANDED))
    op.execute(_insert_trigger(RUNS))


def downgrade() -> None:
    # Transactions holding notes of runs number them at their commit, with the function that
    # can: the downgrade waits for them, and no other can note a run until it is done.
    op.execute("LOCK TABLE change_pending IN ACCESS EXCLUSIVE MODE")
    op.execute(_insert_trigger(EACH))
    op.execute(_commit(NOTES))
    op.execute("ALTER TABLE change_pending DROP COLUMN last_record_id")
