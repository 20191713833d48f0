"""The change feed notes a TRUNCATE as the removal of every record it empties.

The feed's triggers (migration 0014) fire on INSERT, UPDATE and DELETE. A TRUNCATE fires none
of them, so an operator who emptied the register, a programme's participations or the owners'
personal data with it left every copy kept from the feed holding what no longer exists: the
owners' NIKs included, which a copy must drop when the register does (UU 27/2022).

A BEFORE TRUNCATE trigger runs while the rows are still there (PostgreSQL fires every table's
before it empties any, those a CASCADE reaches included), so each notes, as the DELETE trigger
would, a removal for each of its records: for owners, a change of their business's personal
data. The entries are numbered at commit like any others; a rolled-back TRUNCATE notes nothing.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"

COLUMNS = (
    "record_kind, record_id, operation, deactivated, personal, old_province, old_regency, "
    "old_district, new_province, new_regency, new_district, owner_client_id"
)

# Per table: the SELECT whose rows are the entries of emptying it, as 0014's DELETE trigger
# writes them from its transition table.
REMOVALS = {
    "msmes": "SELECT 'msme', o.id::text, 'delete', false, false, o.province_code,"
    " o.regency_code, o.district_code, NULL, NULL, NULL, NULL FROM msmes o ORDER BY o.id",
    "cooperatives": "SELECT 'cooperative', o.id::text, 'delete', false, false, o.province_code,"
    " o.regency_code, o.district_code, NULL, NULL, NULL, NULL FROM cooperatives o ORDER BY o.id",
    "guarantees": "SELECT 'guarantee', o.id::text, 'delete', false, false, o.province_code,"
    " o.regency_code, NULL, NULL, NULL, NULL, o.guarantor_client_id FROM guarantees o"
    " ORDER BY o.id",
    "participations": "SELECT 'participation', r.id::text, 'delete', false, false,"
    " CASE WHEN r.msme_id IS NOT NULL THEN m.province_code ELSE c.province_code END,"
    " CASE WHEN r.msme_id IS NOT NULL THEN m.regency_code ELSE c.regency_code END,"
    " CASE WHEN r.msme_id IS NOT NULL THEN m.district_code ELSE c.district_code END,"
    " NULL, NULL, NULL, NULL"
    " FROM participations r LEFT JOIN msmes m ON m.id = r.msme_id"
    " LEFT JOIN cooperatives c ON c.id = r.cooperative_id"
    " WHERE coalesce(m.id, c.id) IS NOT NULL ORDER BY r.id",
    "msme_owners": "SELECT 'msme', r.msme_id::text, 'update', false, true, m.province_code,"
    " m.regency_code, m.district_code, m.province_code, m.regency_code, m.district_code, NULL"
    " FROM msme_owners r JOIN msmes m ON m.id = r.msme_id ORDER BY r.msme_id",
}


def _name(table: str) -> str:
    return f"{table}_change_log_truncate"


def upgrade() -> None:
    for table, removals in REMOVALS.items():
        op.execute(f"""
CREATE FUNCTION {_name(table)}() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
DECLARE
    logged bigint;
BEGIN
    INSERT INTO change_pending ({COLUMNS}) {removals};
    GET DIAGNOSTICS logged = ROW_COUNT;
    IF logged > 0 THEN
        INSERT INTO change_pending_transactions (xid) VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
""")
        op.execute(
            f"CREATE TRIGGER {_name(table)} BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_name(table)}()"
        )


def downgrade() -> None:
    for table in REMOVALS:
        op.execute(f"DROP TRIGGER {_name(table)} ON {table}")
        op.execute(f"DROP FUNCTION {_name(table)}()")
