"""A release's copies are the owner's to write alone, whatever default privileges say.

The release function makes its copies afresh each time, outside any migration, so they took
whatever default privileges their owner's tables get: after `ALTER DEFAULT PRIVILEGES FOR ROLE
sinergi_owner GRANT ALL ON TABLES TO sinergi_service` (a common habit), every release was
writable by the service until the next `sinergi migrate`, which could forge a released figure or
undo a suppression. `copy_figure_release` (0055's, otherwise unchanged) now takes back, once the
copies are made, every privilege on them but SELECT from every role but their owner, the grant
option on SELECT too, and everything from PUBLIC: the service reads them (db/roles.py's own
default privilege), nobody else writes them. A downgrade puts back 0055's function.

Revision ID: 0059
Revises: 0058
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0059"
down_revision = "0058"
branch_labels = None
depends_on = None

READ_ONLY = """
    FOR held IN
        SELECT c.oid::regclass AS copy, a.grantee, a.privilege_type
          FROM pg_class c, aclexplode(c.relacl) a
         WHERE c.relnamespace = target::regnamespace AND a.grantee <> c.relowner
           AND (a.grantee = 0 OR a.privilege_type <> 'SELECT' OR a.is_grantable)
    LOOP
        EXECUTE format('REVOKE %s%s ON %s FROM %s CASCADE',
                       CASE WHEN held.grantee <> 0 AND held.privilege_type = 'SELECT'
                            THEN 'GRANT OPTION FOR ' END,
                       held.privilege_type, held.copy,
                       CASE WHEN held.grantee = 0 THEN 'PUBLIC'
                            ELSE quote_ident(pg_get_userbyid(held.grantee)) END);
    END LOOP;
    RETURN QUERY"""
"""Run once the copies are made, before the pointer moves to them."""


def _copying_0055() -> str:
    turnover_year = migration("0055_scale_history_turnover_year.py")
    copying: str = turnover_year.REGISTERED._release_copying(turnover_year.RELEASED_HISTORY)
    return copying


def read_only(copying: str) -> str:
    """`copying`, a release function, taking back what READ_ONLY does once its copies are made:
    a later revision that changes what a release copies keeps this rule through it."""
    assert copying.count("    target text;\n") == copying.count("    RETURN QUERY") == 1
    copying = copying.replace("    target text;\n", "    target text;\n    held record;\n")
    return copying.replace("    RETURN QUERY", READ_ONLY)


def upgrade() -> None:
    op.execute(read_only(_copying_0055()))


def downgrade() -> None:
    op.execute(_copying_0055())
