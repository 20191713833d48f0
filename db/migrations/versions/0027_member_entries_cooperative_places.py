"""A member's entry for its cooperative's move says where the cooperative was and went.

Migration 0025 gives each member of a cooperative that moves an `update` entry where the member
lies, so that a reader whose view of the cooperative changes with the move learns that the
member's record now names it, or no longer does. The entry reached every reader whose
jurisdiction holds a member, though: a Kalteng reader got an `UPDATED` entry in which nothing
it may see had changed (the same version, no cooperative named) when a Kalbar cooperative moved
between two districts of Kalbar, and so learned that the business belongs to a cooperative it
cannot see, that the cooperative moved and when, and, from the entries of one commit, which of
its businesses share it.

The member entries now carry the cooperative's place before and after the move
(`cooperative_old_*` and `cooperative_new_*`, in `change_log` and `change_pending`; null in
every other entry), and the feed (db/queries/change_feed.py) hands such an entry only to a
reader who sees the cooperative before or after: the one whose copy names it, or now must, or
must no longer. Entries logged before this migration name no cooperative's place and reach
readers as they did. The commit trigger (0014's `change_pending_commit`) copies the new columns
into the log; the other triggers leave them null. Compaction forgets them when it folds such an
entry into the member's creation, which every reader of the member must receive. A downgrade
puts back 0025's trigger and drops the places recorded, so those entries reach every reader of
the member again.

Revision ID: 0027
Revises: 0026
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"

ENTRY = (
    "record_kind, record_id, operation, deactivated, personal, old_province, old_regency, "
    "old_district, new_province, new_regency, new_district, owner_client_id"
)
"""An entry's columns as 0014 made them."""
PLACE_COLUMNS = tuple(
    f"cooperative_{when}_{level}"
    for when in ("old", "new")
    for level in ("province", "regency", "district")
)
WITH_PLACES = f"{ENTRY}, {', '.join(PLACE_COLUMNS)}"
PLACE_VALUES = """,
           o.province_code, o.regency_code, o.district_code,
           n.province_code, n.regency_code, n.district_code"""
"""Where the cooperative was (`o`) and went (`n`), as a member's entry gives them."""
FEED_TABLES = ("change_log", "change_pending")


def _commit(columns: str) -> str:
    """0014's commit trigger, moving `columns` of the transaction's pending entries."""
    return f"""
CREATE OR REPLACE FUNCTION change_pending_commit() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
    -- Held until this transaction's commit is visible: entries are numbered in that order.
    PERFORM pg_advisory_xact_lock(hashtext('sinergi.change_feed'));
    INSERT INTO change_log (id, {columns})
    SELECT nextval('change_log_id_seq'), {columns}
      FROM (SELECT * FROM change_pending WHERE xid = NEW.xid ORDER BY pending_id) AS pending;
    DELETE FROM change_pending WHERE xid = NEW.xid;
    DELETE FROM change_pending_transactions WHERE xid = NEW.xid;
    PERFORM pg_notify('sinergi_changes', '');
    RETURN NULL;
END $$;
"""


def _members(columns: str, cooperative_places: str) -> str:
    """0025's trigger function, writing `columns` (with the cooperative's places, if given)."""
    return f"""
CREATE OR REPLACE FUNCTION cooperatives_change_log_members() RETURNS trigger LANGUAGE plpgsql
{DEFINER} AS $$
DECLARE
    logged bigint;
BEGIN
    INSERT INTO change_pending ({columns})
    SELECT 'msme', m.id::text, 'update', false, false,
           m.province_code, m.regency_code, m.district_code,
           m.province_code, m.regency_code, m.district_code, NULL{cooperative_places}
      FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN msmes m ON m.cooperative_id = n.id
     WHERE (o.province_code, o.regency_code, o.district_code)
           IS DISTINCT FROM (n.province_code, n.regency_code, n.district_code)
     ORDER BY m.id;
    GET DIAGNOSTICS logged = ROW_COUNT;
    IF logged > 0 THEN
        INSERT INTO change_pending_transactions (xid) VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
"""



def upgrade() -> None:
    for table in FEED_TABLES:
        added = ", ".join(f"ADD COLUMN {name} varchar(13)" for name in PLACE_COLUMNS)
        op.execute(f"ALTER TABLE {table} {added}")
    op.execute(_commit(WITH_PLACES))
    op.execute(_members(WITH_PLACES, PLACE_VALUES))


def downgrade() -> None:
    op.execute(_members(ENTRY, ""))
    op.execute(_commit(ENTRY))
    for table in FEED_TABLES:
        dropped = ", ".join(f"DROP COLUMN {name}" for name in PLACE_COLUMNS)
        op.execute(f"ALTER TABLE {table} {dropped}")
