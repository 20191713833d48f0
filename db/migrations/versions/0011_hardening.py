"""Failed client authentications, counted per client id and per address in fixed windows.

Shared by every server process, as the request counters are, so the throttle holds however
many workers answer. Like them, worth nothing after a crash (a lost count gives an attacker a
few more guesses, once), so the table skips the WAL: UNLOGGED, and not modelled.

Revision ID: 0011
Revises: 0009
"""

from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE UNLOGGED TABLE auth_failures ("
        " subject text NOT NULL,"
        " window_start timestamptz NOT NULL,"
        " failures integer NOT NULL,"
        " CONSTRAINT pk_auth_failures PRIMARY KEY (subject, window_start))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE auth_failures")
