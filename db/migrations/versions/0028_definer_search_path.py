"""Every SECURITY DEFINER function searches the caller's temporary schema last, not first.

The change feed's trigger functions (0014, 0021, 0025, 0027) run as the owner with `search_path =
pg_catalog, public`. A path that does not name `pg_temp` has PostgreSQL search the session's
temporary schema first for tables, and the service role may create temporary tables: one named
`change_pending` in its own session took the feed's entries in place of the real table, so a
trigger the service put on it ran as the owner (and could grant the service anything), and a
row forged in it was numbered into `change_log` at commit.

Each definer function in `public` now has `search_path = pg_catalog, public, pg_temp`: its
unqualified names are the owner's tables, and functions and operators are never looked up in
`pg_temp`. The service may create nothing in `public` (0010; db/roles.py takes back a grant of
CREATE made by hand), so no schema ahead of `pg_temp` holds anything of the service's.
tests/test_definer_functions.py holds every definer function, later ones included, to this.

Revision ID: 0028
Revises: 0027
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def _pin(path: str) -> str:
    """Set `path` on every SECURITY DEFINER function in `public`: the feed's, whose bodies stay
    as their migrations wrote them."""
    return f"""
DO $$
DECLARE
    definer regprocedure;
BEGIN
    FOR definer IN SELECT oid FROM pg_proc
                    WHERE prosecdef AND pronamespace = 'public'::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = {path}', definer);
    END LOOP;
END $$
"""


def upgrade() -> None:
    op.execute(_pin("pg_catalog, public, pg_temp"))


def downgrade() -> None:
    op.execute(_pin("pg_catalog, public"))
