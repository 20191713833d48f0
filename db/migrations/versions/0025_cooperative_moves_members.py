"""A cooperative that moves changes its member MSMEs' records for some readers: the feed says so.

An MSME's record in the change feed names its cooperative only to a reader who may see that
cooperative (db/queries/change_feed.py), as a fresh page-through does. When a cooperative moves
into or out of a reader's jurisdiction, its members' records change for that reader, though no
MSME row changed: the feed logged the cooperative and its participations (0014), not its
members, and a copy kept from the feed (`sinergi sync`) went on naming a cooperative its reader
could no longer see, or never named one that came into view.

Each member of a cooperative whose place changes now gets an `update` entry, where the member
lies (it did not move), in the same statement-level way as the other entries: one INSERT … SELECT
per statement, through the index on `msmes.cooperative_id`. A trigger of its own beside 0014's,
so that migration's functions stay as they were.

Revision ID: 0025
Revises: 0024
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

NAME = "cooperatives_change_log_members"
# As 0014's feed triggers: written by the definer alone, with a fixed search path.
MEMBERS = f"""
CREATE FUNCTION {NAME}() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    logged bigint;
BEGIN
    INSERT INTO change_pending (record_kind, record_id, operation, deactivated, personal,
                                old_province, old_regency, old_district,
                                new_province, new_regency, new_district, owner_client_id)
    SELECT 'msme', m.id::text, 'update', false, false,
           m.province_code, m.regency_code, m.district_code,
           m.province_code, m.regency_code, m.district_code, NULL
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
    op.execute(MEMBERS)
    op.execute(
        f"CREATE TRIGGER {NAME} AFTER UPDATE ON cooperatives"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {NAME}()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER {NAME} ON cooperatives")
    op.execute(f"DROP FUNCTION {NAME}()")
